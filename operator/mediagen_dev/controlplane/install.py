"""Installing mediagen's API on a control plane: the CRD and the input admission policy, in force.

The one way every user of a local control plane does it (``make dev``, the test fixtures, the benchmarks, the
chaos runs): a new ValidatingAdmissionPolicy takes a moment to be enforced, so this waits until a dry-run of an
over-limit object is refused by it, not merely until the CRD is Established.
"""

from __future__ import annotations

import json
import time

from mediagen.api import admission_policy, crd
from mediagen.api.types import GROUP, KIND, PLURAL, VERSION
from mediagen_dev.controlplane.plane import ControlPlane

_PROBE = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": KIND,
    "metadata": {"name": "policy-probe", "namespace": "default"},
    # Over the per-string limit: only the admission policy refuses it (the CRD schema cannot look inside input).
    "spec": {"model": "a/b", "input": {"prompt": "x" * 20000}},
}


def install_api(plane: ControlPlane, timeout: float = 30.0) -> None:
    """Apply the CRD and the admission policy (generated from the models) and wait until both are in force.

    Raises TimeoutError when the CRD is not Established or the policy not enforced within ``timeout``."""
    plane.kubectl("apply", "-f", "-", input=crd.crd_yaml() + "---\n" + admission_policy.policy_yaml())
    plane.wait_crd_established(f"{PLURAL}.{GROUP}", timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = plane.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(_PROBE), check=False)
        if result.returncode != 0 and "ValidatingAdmissionPolicy" in result.stderr:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the input admission policy was not enforced within {timeout} s")
