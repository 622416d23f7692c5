"""Several operator replicas as the chart deploys them for ``operator.replicas > 1``: the chart's ConfigMap
settings, ServiceAccount and RBAC (rendered by the real helm), two processes with the Deployment's arguments.
Exactly one acts, the other stands by with a live liveness probe; when the leader stops cleanly (a rolling update,
a drained node) it releases the Lease and the standby takes over at its next look, not a lease duration later."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript
from mediagen_dev.helm import Helm, HelmError, find_helm, to_yaml
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.replicas import BECAME_LEADER, STANDING_BY, LeaseReader
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, create, replicate_env, wait_phase, wait_until


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (built on first use by hack/build-helm.sh)."""
    try:
        return Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))
    except HelmError as exc:
        pytest.fail(str(exc), pytrace=False)


def generate(plane: ControlPlane, api: k8s.CustomObjectsApi, namespace: str, name: str, model: str) -> dict[str, Any]:
    create(plane, namespace, name, {"model": model, "input": {"prompt": name}})
    return wait_phase(api, namespace, name, "Succeeded", "Failed")


def test_one_replica_acts_and_a_clean_stop_hands_over_at_once(
    control_plane: ControlPlane,
    api: None,
    helm: Helm,
    custom_api: k8s.CustomObjectsApi,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:6]
    system, work = f"elect-{tag}-sys", f"elect-{tag}-work"
    for namespace in (system, work):
        control_plane.create_namespace(namespace)
    objects = helm.template(
        f"elect-{tag}", system, set_values={"operator.replicas": "2", "operator.watchNamespace": work}
    )
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-operator"))
    assert deployment["spec"]["replicas"] == 2
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"][1:]
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-operator"))
    election = {k: v for k, v in config["data"].items() if "LEASE" in k or "LEADER" in k}
    # The chart's ServiceAccount and RBAC, applied as the admin; the operators use the ServiceAccount's token.
    wanted = {"ServiceAccount", "Role", "RoleBinding"}
    control_plane.kubectl("apply", "-f", "-", input=to_yaml(o for o in objects if o["kind"] in wanted))
    sa = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
    kubeconfig = control_plane.service_account_kubeconfig(system, sa)
    lease = LeaseReader(control_plane.kubeconfig, system, election["MEDIAGEN_LEASE_NAME"])

    model = f"elect-{tag}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.1, output="data"))
    env = replicate_env(s3, fake_replicate, work, **election)
    replicas: dict[str, tuple[OperatorProcess, int]] = {}
    processes: list[OperatorProcess] = []
    for name, port in zip(("pod-a", "pod-b"), free_ports(2), strict=True):
        liveness = [a for a in args if not a.startswith("--liveness")] + [f"--liveness=http://127.0.0.1:{port}/healthz"]
        process = OperatorProcess(kubeconfig, {**env, "POD_NAME": name}, tmp_path / f"{name}.log", liveness)
        processes.append(process)
        replicas[name] = (process.start(), port)
    try:
        # Exactly one leads; which one is up to the race for the Lease, and the Lease says who won.
        wait_until(lambda: lease.holder_pod() in replicas, "a replica to take the Lease", timeout=60)
        active_name = lease.holder_pod()
        (active, _), (standby, standby_port) = replicas.pop(active_name), next(iter(replicas.values()))
        active.wait_for_log(STARTED)
        standby.wait_for_log(STANDING_BY)
        assert STARTED not in standby.logs() and BECAME_LEADER not in standby.logs()
        health = httpx.get(f"http://127.0.0.1:{standby_port}/healthz", timeout=5).json()
        assert health["role"] == "standby" and health["leader"].startswith(f"{active_name}_")

        first = generate(control_plane, custom_api, work, "first", model)
        assert first["status"]["phase"] == "Succeeded"
        assert fake_replicate.creates_by_marker[f"{first['metadata']['uid']}.1"] == 1
        assert f"{work}/first" in active.logs() and f"{work}/first" not in standby.logs()

        # The leader stops cleanly: it finishes, releases the Lease, and the standby takes it at its next look.
        stopping = time.monotonic()
        active.stop()
        assert active._process is not None and active._process.returncode == 0
        assert "released the Lease" in active.logs()
        wait_until(lambda: lease.holder_pod() not in ("", active_name), "the standby to take over", timeout=10)
        handover = time.monotonic() - stopping
        record = lease.record()
        assert record is not None and record.transitions == 1
        second = generate(control_plane, custom_api, work, "second", model)
        assert second["status"]["phase"] == "Succeeded" and f"{work}/second" in standby.logs()
    finally:
        for process in processes:
            process.stop()
    # A released Lease is taken within a retry period (2 s), far sooner than the 10 s a crash costs.
    assert handover < 10, handover
    assert not [line for line in standby.logs().splitlines() if "Forbidden" in line or " 403" in line]
