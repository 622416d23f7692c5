"""The local control plane, with the real etcd, kube-apiserver and kubectl binaries."""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mediagen_dev.controlplane import K8S_VERSION, ControlPlane
from mediagen_dev.controlplane.ports import is_port_free
from mediagen_dev.paths import REPO_ROOT
from tests.support.controlplane_fixtures import unique_namespace_name


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _assert_gone(pids: list[int], ports: list[int]) -> None:
    assert _eventually(lambda: not any(_alive(pid) for pid in pids)), f"still running: {pids}"
    # After a SIGKILL the kernel needs a moment to tear the servers' connections down.
    assert _eventually(lambda: all(is_port_free(port) for port in ports)), f"ports still bound: {ports}"


@pytest.fixture(scope="module")
def second_plane() -> Iterator[ControlPlane]:
    """A plane of its own, for the side-by-side and restart tests (leaving the session's alone)."""
    with ControlPlane() as plane:
        print(f"second control plane started in {plane.start_seconds:.2f} s")
        yield plane


def test_session_plane_is_ready_and_reports_its_version(control_plane: ControlPlane) -> None:
    assert control_plane.start_seconds is not None
    print(f"session control plane started in {control_plane.start_seconds:.2f} s")
    assert control_plane.start_seconds < 90

    # Anonymous (system:public-info-viewer), verifying TLS against the apiserver's own bundle.
    tls = ssl.create_default_context(cafile=str(control_plane.ca_file))
    with httpx.Client(base_url=control_plane.server, verify=tls, trust_env=False, timeout=10) as client:
        readyz = client.get("/readyz")
        version = client.get("/version").json()
    assert (readyz.status_code, readyz.text) == (200, "ok")
    assert version["gitVersion"] == K8S_VERSION

    namespaces = control_plane.kubectl("get", "namespaces", "--output=name").stdout.split()
    assert "namespace/default" in namespaces
    assert "insecure-skip-tls-verify" not in control_plane.kubeconfig.read_text()


def test_service_account_has_no_rights_until_rbac_grants_them(control_plane: ControlPlane, namespace: str) -> None:
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "operator")

    def can_i(*args: str) -> str:
        result = control_plane.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
        return result.stdout.strip()

    whoami = control_plane.kubectl(
        "auth", "whoami", "--output=jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:operator"
    assert can_i("list", "secrets", f"--namespace={namespace}") == "no"
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    tls = ssl.create_default_context(cafile=str(control_plane.ca_file))
    secrets_url = f"{control_plane.server}/api/v1/namespaces/{namespace}/secrets"
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(secrets_url, headers=headers, verify=tls, trust_env=False).status_code == 403

    grant = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "read-secrets", "namespace": namespace},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "operator-reads-secrets", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
            },
        ],
    }
    control_plane.kubectl("apply", "--filename=-", input=json.dumps(grant))

    # The RBAC authorizer reads roles from an informer cache, so the grant lands shortly after.
    assert _eventually(lambda: can_i("list", "secrets", f"--namespace={namespace}") == "yes")
    assert httpx.get(secrets_url, headers=headers, verify=tls, trust_env=False).status_code == 200
    assert can_i("list", "secrets", "--namespace=default") == "no"


def test_two_planes_run_side_by_side(control_plane: ControlPlane, second_plane: ControlPlane) -> None:
    first, second = control_plane, second_plane
    assert set(vars(first.ports).values()).isdisjoint(vars(second.ports).values())
    assert first.workdir != second.workdir
    assert set(first.pids.values()).isdisjoint(second.pids.values())

    only_in_second = unique_namespace_name("side-by-side")
    second.create_namespace(only_in_second)
    assert f"namespace/{only_in_second}" in second.kubectl("get", "ns", "--output=name").stdout.split()
    assert f"namespace/{only_in_second}" not in first.kubectl("get", "ns", "--output=name").stdout.split()


@pytest.mark.parametrize(
    ("server", "graceful"),
    [("kube-apiserver", True), ("etcd", True), ("etcd", False)],
    ids=["kube-apiserver", "etcd", "etcd-crash"],
)
def test_restart_keeps_data(second_plane: ControlPlane, server: str, graceful: bool) -> None:
    namespace = unique_namespace_name(f"restart-{server}")
    second_plane.create_namespace(namespace)
    second_plane.kubectl("create", "configmap", "kept", f"--namespace={namespace}", "--from-literal=answer=42")
    before = json.loads(second_plane.kubectl("get", "cm/kept", "-n", namespace, "-o", "json").stdout)
    old_pid, old_ports = second_plane.pids[server], second_plane.ports

    began = time.monotonic()
    restart = second_plane.restart_etcd if server == "etcd" else second_plane.restart_apiserver
    restart(graceful=graceful)
    print(f"restarting {server} ({'graceful' if graceful else 'SIGKILL'}) took {time.monotonic() - began:.2f} s")

    assert second_plane.pids[server] != old_pid
    assert not _alive(old_pid)
    assert second_plane.ports == old_ports
    after = json.loads(second_plane.kubectl("get", "cm/kept", "-n", namespace, "-o", "json").stdout)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["data"] == {"answer": "42"}


def test_stop_leaves_no_process_port_or_workdir_behind() -> None:
    with ControlPlane() as plane:
        pids, ports, workdir = list(plane.pids.values()), list(vars(plane.ports).values()), plane.workdir
        assert all(_alive(pid) for pid in pids)
        assert not any(is_port_free(port) for port in ports)
    print(f"start {plane.start_seconds:.2f} s, stop {plane.stop_seconds:.2f} s")
    _assert_gone(pids, ports)
    assert not workdir.exists()
    plane.stop()  # idempotent


_ABANDON = textwrap.dedent(
    """
    import json, os, signal, sys
    from mediagen_dev.controlplane import ControlPlane
    plane = ControlPlane(keep_workdir=True).start()
    print(json.dumps({"pids": list(plane.pids.values()), "ports": list(vars(plane.ports).values()),
                      "workdir": str(plane.workdir)}), flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_abandoned_plane_does_not_outlive_python(how: str) -> None:
    """Servers die with the Python process: by atexit on a normal exit, by the kernel on SIGKILL."""
    operator_dir = str(REPO_ROOT / "operator")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [operator_dir, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", _ABANDON, how], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    expected = -signal.SIGKILL if how == "kill" else 0
    assert result.returncode == expected, result.stderr
    state = json.loads(result.stdout.splitlines()[-1])
    try:
        _assert_gone(state["pids"], state["ports"])
    finally:
        shutil.rmtree(state["workdir"], ignore_errors=True)
