"""The reconcile decisions: pure functions from (spec, status, what the backend said, now) to the next step.

Nothing here does I/O; the operator's worker performs the step and feeds the result back in.
"""
