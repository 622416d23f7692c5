"""`mediagen generate/get/watch` and `kubectl mediagen` against the real control plane, operators and gateway.

The CLI runs as its own process, as a person would run it; its output is a pipe, so it prints plain lines (the
live terminal rendering is covered in tests/unit/test_userctl.py). Models are the fake Replicate's: a prompt
word picks the scenario (``fake:nsfw`` fails the way a flagged prompt does, ``fake:stuck`` never leaves the
queue).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kubernetes import client as k8s
from PIL import Image

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.gateway_process import GatewayProcess
from tests.support.gateway_fixtures import GatewayTenant, gateway, gateway_kubeconfig, mint_tenant, token_admin
from tests.support.stack_fixtures import model_name, wait_for

__all__ = ["gateway", "gateway_kubeconfig", "mint_tenant", "token_admin"]

CLI = [sys.executable, "-m", "mediagen.cli"]


def cli(plane: ControlPlane, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_generate_wait_writes_the_image(control_plane: ControlPlane, rep_namespace: str, tmp_path: Path) -> None:
    target = tmp_path / "fox.png"
    result = cli(
        control_plane, "generate", model_name(), "-i", "prompt=a red fox",
        "-n", rep_namespace, "--wait", "-o", str(target),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(target).format == "PNG"
    assert f"saved {target}" in result.stderr
    phases = [line.split("\t")[1] for line in result.stdout.splitlines()]
    assert phases[-1] == "Succeeded" and "Running" in phases, result.stdout  # followed live, line by line
    assert result.stdout.splitlines()[-1].split("\t")[2] == "100%"


def test_a_failure_exits_non_zero_with_the_reason(control_plane: ControlPlane, rep_namespace: str) -> None:
    result = cli(control_plane, "generate", model_name(), "-i", "prompt=fake:nsfw", "-n", rep_namespace, "--wait")
    assert result.returncode == 1
    assert "Failed: ContentFlagged: model failed: NSFW content detected" in result.stderr, result.stderr


def test_invalid_requests_are_refused_before_anything_is_created(control_plane: ControlPlane, namespace: str) -> None:
    for args, message in [
        (["not-a-model"], "model 'not-a-model' is not owner/name or owner/name:version"),
        (["a/b", "-i", "prompt"], "-i expects key=value, got 'prompt'"),
        (["a/b", "-i", "x=1", "-i", "x=2"], "input 'x' is given twice"),
        (["a/b", "--deployment", "c/d"], "give a MODEL"),
    ]:
        result = cli(control_plane, "generate", *args, "-n", namespace)
        assert (result.returncode, message in result.stderr) == (2, True), (args, result.stderr)
    assert cli(control_plane, "get", "-n", namespace).stdout == ""


def test_ctrl_c_while_waiting_leaves_the_generation_running(
    control_plane: ControlPlane, rep_namespace: str, custom_api: k8s.CustomObjectsApi
) -> None:
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)}
    process = subprocess.Popen(
        [*CLI, "generate", model_name(), "-i", "prompt=fake:stuck", "-n", rep_namespace, "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # the first progress line: it is waiting now
    name = first.split("\t")[0]
    assert name.startswith("gen-"), first
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert f"stopped waiting; {name} keeps running" in stderr
    assert f"mediagen watch {name} -n {rep_namespace}" in stderr

    body = wait_for(custom_api, rep_namespace, name, lambda b: (b.get("status") or {}).get("prediction"))
    assert body["spec"]["cancel"] is False
    assert body["status"]["phase"] in ("Pending", "Running")
    custom_api.patch_namespaced_custom_object(  # let the operator end it: nothing left behind
        "mediagen.fleek.xyz", "v1alpha1", rep_namespace, "mediagenerations", name, {"spec": {"cancel": True}}
    )


def test_get_and_watch_follow_what_exists(control_plane: ControlPlane, rep_namespace: str) -> None:
    created = cli(control_plane, "generate", model_name(), "-i", "prompt=an owl", "-n", rep_namespace)
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip()
    followed = cli(control_plane, "watch", name, "-n", rep_namespace)  # returns when it finished
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines()[-1].startswith("http")  # the output's URL

    listed = cli(control_plane, "get", "-n", rep_namespace).stdout.splitlines()
    row = next(line.split("\t") for line in listed if line.startswith(name))
    assert row[1:3] == ["Succeeded", "100%"] and row[-1].startswith("http")
    missing = cli(control_plane, "get", "nope", "-n", rep_namespace)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"mediagen: no MediaGeneration nope in namespace {rep_namespace}",
    )


def test_kubectl_finds_the_plugin(control_plane: ControlPlane, rep_namespace: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # where kubectl-mediagen is
    }
    target = tmp_path / "plugin.png"
    command = [str(control_plane.kubectl_path), "mediagen", "generate", model_name(), "-i", "prompt=a heron"]
    result = subprocess.run(
        [*command, "-n", rep_namespace, "-o", str(target)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(target).format == "PNG"
    usage = subprocess.run([str(control_plane.kubectl_path), "mediagen", "--help"], env=env, capture_output=True)
    assert b"usage: kubectl mediagen" in usage.stdout


def test_through_the_gateway_with_a_token(
    gateway: GatewayProcess, mint_tenant: Callable[[str], GatewayTenant], mock_namespace: str, tmp_path: Path
) -> None:
    tenant = mint_tenant(mock_namespace)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(MEDIAGEN_GATEWAY_URL=gateway.url, MEDIAGEN_TOKEN=tenant.token)
    target = tmp_path / "via-gateway.png"
    result = subprocess.run(
        [*CLI, "generate", "black-forest-labs/flux-schnell", "-i", "prompt=a lighthouse", "-i", "width=320",
         "--wait", "-o", str(target)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(target).size[0] == 320
    assert f"in the gateway at {gateway.url}" in result.stderr
    listed = subprocess.run([*CLI, "get"], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "\tSucceeded\t100%\tblack-forest-labs/flux-schnell\t" in listed

    env["MEDIAGEN_TOKEN"] = "mg_0123456789ab_" + "0" * 40
    refused = subprocess.run([*CLI, "get"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and "answered HTTP 401" in refused.stderr
