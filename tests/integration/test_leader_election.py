"""Two operator processes electing a leader on a Lease, on the real API server, with the defaults the chart ships
(a 10 s lease, 7 s renew deadline, 2 s retry period).

A SIGKILLed leader is replaced by the standby, which never acts before the dead leader's lease ran out and
finishes the work with exactly one prediction per resource; meanwhile the standby answers its liveness probe and
refuses webhook deliveries with 503, and hands those ports to the operator once it leads. A leader that is alive
but cannot renew (an admission policy refuses its renewals) exits before its lease can be taken."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import httpx
from kubernetes import client as k8s

from mediagen.controller.election import pod_of
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.replicas import BECAME_LEADER, STANDING_BY, LeaseReader, elected_env
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, create, fresh_namespace, replicate_env, wait_phase, wait_until

LEASE_SECONDS, RETRY_SECONDS = 10, 2
TARGET_SECONDS = 15


def replica(
    plane: ControlPlane, env: dict[str, str], namespace: str, name: str, tmp_path: Path, *args: str, **extra: str
) -> OperatorProcess:
    """``mediagen operator`` as replica ``name`` (its POD_NAME) electing its leader on a Lease in ``namespace``."""
    full_env = {**env, **elected_env(namespace, name, **extra)}
    return OperatorProcess(plane.kubeconfig, full_env, tmp_path / f"{name}.log", args)


def test_a_killed_leader_is_replaced_within_the_target_and_every_generation_finishes_once(
    control_plane: ControlPlane,
    api: None,
    custom_api: k8s.CustomObjectsApi,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    namespace = fresh_namespace(control_plane, "elect")
    model = f"{namespace}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=5.0, output="data"))
    env = replicate_env(s3, fake_replicate, namespace, MEDIAGEN_WEBHOOK_URL="https://mediagen.test/replicate-webhook")
    lease = LeaseReader(control_plane.kubeconfig, namespace)
    (a_health, a_hooks, b_health, b_hooks) = free_ports(4)
    first, second = (
        replica(
            control_plane,
            env,
            namespace,
            name,
            tmp_path,
            f"--liveness=http://127.0.0.1:{health}/healthz",  # as the chart runs it
            MEDIAGEN_WEBHOOK_PORT=str(hooks),
        )
        for name, health, hooks in (("replica-a", a_health, a_hooks), ("replica-b", b_health, b_hooks))
    )
    try:
        first.start().wait_for_log(STARTED)
        assert lease.holder_pod() == "replica-a"
        second.start().wait_for_log(STANDING_BY)

        # The standby: alive for its probe, naming itself and the leader; webhook deliveries are refused.
        health = httpx.get(f"http://127.0.0.1:{b_health}/healthz", timeout=5).json()
        assert health["role"] == "standby" and pod_of(health["identity"]) == "replica-b"
        assert pod_of(health["leader"]) == "replica-a"
        refused = httpx.post(f"http://127.0.0.1:{b_hooks}/replicate-webhook", content=b"{}", timeout=5)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"

        names = [f"gen-{i}" for i in range(3)]
        for name in names:
            create(control_plane, namespace, name, {"model": model, "input": {"prompt": name}})
        for name in names:  # running on Replicate, ids recorded, outputs not copied yet
            wait_phase(custom_api, namespace, name, "Running")
        last_renewal = lease.record()
        killed_at = time.monotonic()
        first.kill()
        wait_until(lambda: lease.holder_pod() == "replica-b", "the standby to take the Lease", timeout=30)
        took_over = time.monotonic() - killed_at
        took_over_wall = time.time()
        bodies = [wait_phase(custom_api, namespace, name, "Succeeded", "Failed") for name in names]
        # Leading, the operator itself answers on the ports the standby answered on: kopf's probe, the receiver.
        assert "workers" in httpx.get(f"http://127.0.0.1:{b_health}/healthz", timeout=5).json()
        unsigned = httpx.post(f"http://127.0.0.1:{b_hooks}/replicate-webhook", content=b"{}", timeout=5)
        assert unsigned.status_code == 400  # the receiver itself: no webhook headers, refused before the body
    finally:
        first.kill()
        second.stop()

    # Never before the dead leader's lease ran out, and within the target.
    assert last_renewal is not None and last_renewal.renew_time is not None
    assert took_over_wall - last_renewal.renew_time.timestamp() >= LEASE_SECONDS
    assert LEASE_SECONDS - RETRY_SECONDS <= took_over <= TARGET_SECONDS
    assert [body["status"]["phase"] for body in bodies] == ["Succeeded"] * 3
    for body in bodies:  # exactly one prediction per resource, created by the dead leader, finished by the new one
        assert fake_replicate.creates_by_marker[f"{body['metadata']['uid']}.1"] == 1
        assert f"{body['metadata']['uid']}.2" not in fake_replicate.creates_by_marker
    logs = second.logs()
    assert logs.count(BECAME_LEADER) == 1 and all(f"{namespace}/{name}" in logs for name in names)


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_can_be_taken(
    control_plane: ControlPlane,
    api: None,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    namespace = fresh_namespace(control_plane, "elect")
    env = replicate_env(s3, fake_replicate, namespace)
    lease = LeaseReader(control_plane.kubeconfig, namespace)
    first = replica(control_plane, env, namespace, "replica-a", tmp_path)
    second = replica(control_plane, env, namespace, "replica-b", tmp_path)
    policy = f"refuse-renewals-{uuid.uuid4().hex[:6]}"
    try:
        first.start().wait_for_log(STARTED)
        second.start().wait_for_log(STANDING_BY)
        record = lease.record()
        assert record is not None and pod_of(record.holder) == "replica-a"
        # From now on the API server refuses every write that keeps replica-a the holder; it stays connected and
        # could still write MediaGenerations, so only its own deadline can stop it.
        refuse_renewals(control_plane, namespace, policy, record.holder)
        exited_at = None
        while lease.holder_pod() != "replica-b":
            if exited_at is None and first.pid is None:
                exited_at = time.monotonic()
            time.sleep(0.05)
        took_over_at = time.monotonic()
        assert first.pid is None, "the standby took the Lease while the old leader still ran"
        assert exited_at is not None and took_over_at - exited_at >= 2.0  # the gap: 10 s lease - 7 s deadline
        assert first._process is not None and first._process.returncode == os.EX_TEMPFAIL
        assert "lost the leadership" in first.logs()
        assert "renewing the Lease failed" in first.logs() and "ValidatingAdmissionPolicy" in first.logs()
        second.wait_for_log(STARTED)
    finally:
        control_plane.kubectl(
            "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False
        )
        first.kill()
        second.stop()


def refuse_renewals(plane: ControlPlane, namespace: str, name: str, holder: str) -> None:
    """A ValidatingAdmissionPolicy that refuses Lease updates naming ``holder``, waited for until enforced."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["leases"],
                    }
                ]
            },
            "validations": [{"expression": f"object.spec.holderIdentity != '{holder}'", "message": "no renewals"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    plane.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]})
    )
    probe = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "mediagen-operator", "namespace": namespace},
        "spec": {"holderIdentity": holder},
    }
    deadline = time.monotonic() + 30
    while True:  # a server-side dry run changes nothing, and is refused once the policy is in force
        result = plane.kubectl("replace", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        if result.returncode != 0 and "no renewals" in result.stderr:
            return
        assert time.monotonic() < deadline, f"the policy was not enforced: {result.stderr}"
        time.sleep(0.2)
