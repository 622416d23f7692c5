"""Several operator replicas with kopf peering (what the chart deploys for operator.replicas > 1): exactly one
works, the other stands by with a live liveness probe, and takes over when the active one stops. Both run with
the chart's ServiceAccount and RBAC, watching one namespace (a KopfPeering there)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript
from mediagen_dev.helm import Helm, HelmError, find_helm, to_yaml
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, replicate_env, wait_phase

PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (built on first use by hack/build-helm.sh)."""
    try:
        return Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))
    except HelmError as exc:
        pytest.fail(str(exc), pytrace=False)


class Replica(OperatorProcess):
    """``mediagen operator`` with extra arguments (the chart's ``--peering``, a liveness endpoint)."""

    def __init__(self, kubeconfig: Path, env: Mapping[str, str], log_path: Path, args: list[str]) -> None:
        super().__init__(kubeconfig, env, log_path)
        self.args = args

    def start(self) -> Self:
        if self.pid is not None:
            raise RuntimeError("operator already running")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mediagen.cli", "operator", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self

    @property
    def working(self) -> bool:
        """kopf starts a peered operator paused; it logs when it resumes and when it pauses again."""
        logs = self.logs()
        return logs.rfind(RESUMED) > logs.rfind(PAUSED)

    @property
    def priority(self) -> int:
        match = re.search(r"with priority (\d+)", self.logs())
        assert match, self.logs()[-2000:]
        return int(match.group(1))


def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def generate(
    plane: ControlPlane, api: k8s.CustomObjectsApi, namespace: str, name: str, model: str
) -> dict[str, Any]:  # fmt: skip
    body = {
        "apiVersion": "mediagen.fleek.xyz/v1alpha1",
        "kind": "MediaGeneration",
        "metadata": {"name": name},
        "spec": {"model": model, "input": {"prompt": name}},
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    return wait_phase(api, namespace, name, "Succeeded", "Failed")


def test_one_replica_works_and_the_other_takes_over(
    control_plane: ControlPlane,
    api: None,
    helm: Helm,
    custom_api: k8s.CustomObjectsApi,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:6]
    system, work = f"peer-{tag}-sys", f"peer-{tag}-work"
    for namespace in (system, work):
        control_plane.create_namespace(namespace)
    values = {"operator.replicas": "2", "operator.watchNamespace": work}
    objects = helm.template(f"peer-{tag}", system, set_values=values)
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-operator"))
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"][1:]
    assert "--peering=mediagen" in args
    # The chart's peering CRD, ServiceAccount and RBAC, applied as the admin; the operators use the SA's token.
    wanted = {"CustomResourceDefinition", "ServiceAccount", "Role", "RoleBinding"}
    control_plane.kubectl("apply", "-f", "-", input=to_yaml(o for o in objects if o["kind"] in wanted))
    control_plane.wait_crd_established("kopfpeerings.kopf.dev")
    sa = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
    kubeconfig = control_plane.service_account_kubeconfig(system, sa)

    model = f"peer-{tag}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.1, output="data"))
    env = replicate_env(s3, fake_replicate, work)
    replicas = []
    for index, port in enumerate(free_ports(2)):
        liveness = [a for a in args if not a.startswith("--liveness")] + [f"--liveness=http://127.0.0.1:{port}/healthz"]
        replica = Replica(kubeconfig, env, tmp_path / f"replica-{index}.log", liveness)
        replicas.append((replica.start(), port))
    try:
        for replica, _ in replicas:
            replica.wait_for_log(STARTED)
        (active, _), (standby, standby_port) = sorted(replicas, key=lambda r: -r[0].priority)
        assert active.priority != standby.priority
        peering: dict[str, Any] = {}

        def both_registered() -> bool:
            nonlocal peering
            got = control_plane.kubectl("get", "kopfpeerings", "mediagen", "-n", work, "-o", "json", check=False)
            peering = json.loads(got.stdout) if got.returncode == 0 else {}
            return len(peering.get("status") or {}) == 2

        wait_until(both_registered, "both replicas in the KopfPeering")
        assert sorted(p["priority"] for p in peering["status"].values()) == sorted([active.priority, standby.priority])
        wait_until(lambda: active.working and not standby.working, "exactly one working replica")
        # The standby is alive for its liveness probe while it waits.
        assert httpx.get(f"http://127.0.0.1:{standby_port}/healthz", timeout=5).status_code == 200

        first = generate(control_plane, custom_api, work, "first", model)
        assert first["status"]["phase"] == "Succeeded"
        assert fake_replicate.creates_by_marker[f"{first['metadata']['uid']}.1"] == 1
        assert f"{work}/first" not in standby.logs()
        assert f"{work}/first" in active.logs()

        # The active replica stops (a rolling update, a drained node): it leaves the peering, the standby resumes.
        assert active.working and not standby.working
        active.stop()
        wait_until(lambda: standby.working, "the standby to resume", timeout=20)
        second = generate(control_plane, custom_api, work, "second", model)
        assert second["status"]["phase"] == "Succeeded"
        assert f"{work}/second" in standby.logs()
    finally:
        for replica, _ in replicas:
            replica.stop()
