"""The operator: thin kopf handlers (:mod:`.kopf_handlers`) feeding a supervisor of per-resource workers."""
