"""GitOps tools read live MediaGenerations right: kstatus (the library behind Flux's `wait`/`healthChecks`, kpt and
cli-utils) and Argo CD's health code, both built from their Go modules (hack/build-checks.sh), judge resources the
operator drove into every phase on the real API server, as `kubectl get -o json` prints them.

The expected verdicts are the README's GitOps table (mediagen.api.conditions documents the conditions behind them)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from mediagen.api import conditions
from mediagen.api.types import Phase, StoredOutput
from mediagen.generators.base import Prediction
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.failures import Failure, Kind
from mediagen.reconcile.state import Memory, View
from mediagen_dev.checks import Checks, ChecksError
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, Fault, ModelScript
from mediagen_dev.fake_replicate.logs import TqdmBar
from mediagen_dev.paths import REPO_ROOT
from tests.integration.test_argocd_health import CUSTOMIZATIONS, INSTALLED_ARGOCD_CM
from tests.support.stack_fixtures import create, fresh_namespace, model_name, wait_for, wait_phase

LONG = {"limit": 3, "backoffSeconds": 600, "maxBackoffSeconds": 600}  # a retry that waits out the test
# name -> (kstatus, Argo CD): the verdicts the README promises.
EXPECTED = {
    "pending": ("InProgress", "Progressing"),
    "pending-retry": ("InProgress", "Progressing"),
    "running": ("InProgress", "Progressing"),
    "retrying": ("InProgress", "Progressing"),
    "uploading": ("InProgress", "Progressing"),
    "succeeded": ("Current", "Healthy"),
    "failed": ("Failed", "Degraded"),
    "canceled": ("Current", "Suspended"),
    "canceled-remotely": ("Failed", "Degraded"),
    "canceled-after-success": ("Current", "Healthy"),
    "edited": ("Current", "Healthy"),  # its prompt edited after success: a new generation, succeeded in turn
    "edited-running": ("InProgress", "Progressing"),  # edited to a slow model: the new generation runs
}


def listed(plane: ControlPlane, *namespaces: str) -> list[dict[str, Any]]:
    """Every MediaGeneration of ``namespaces``, as `kubectl get mg -o json` prints them."""
    items: list[dict[str, Any]] = []
    for namespace in namespaces:
        items += json.loads(plane.kubectl("get", "mg", "-n", namespace, "-o", "json").stdout)["items"]
    return items


def cancel(plane: ControlPlane, namespace: str, name: str) -> None:
    plane.kubectl("patch", "mg", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')


def installed_argocd_cm(plane: ControlPlane, path: Path) -> Path:
    """argocd-cm on the API server as Argo CD installs it, patched as the README says, read back as Argo CD sees it."""
    plane.create_namespace("argocd")
    plane.kubectl("apply", "-f", "-", input=json.dumps(INSTALLED_ARGOCD_CM))
    snippet = str(REPO_ROOT / "observability" / "argocd" / "argocd-cm.yaml")
    plane.kubectl("-n", "argocd", "patch", "configmap", "argocd-cm", "--type", "merge", "--patch-file", snippet)
    path.write_text(plane.kubectl("-n", "argocd", "get", "configmap", "argocd-cm", "-o", "yaml").stdout)
    return path


def test_every_phase_of_live_generations_reads_right_in_kstatus_and_argo_cd(
    control_plane: ControlPlane,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    custom_api: k8s.CustomObjectsApi,
    checks: Checks,
    tmp_path: Path,
) -> None:
    plane, ns, fake = control_plane, rep_namespace, fake_replicate
    quick, slow = model_name(), model_name()
    fake.add_model(quick, ModelScript(queue_seconds=0.2, processing_seconds=0.5))
    fake.add_model(slow, ModelScript(queue_seconds=0.2, processing_seconds=600, logs=(TqdmBar(total=600),)))

    def make(name: str, model: str, prompt: str = "a lighthouse", **spec: Any) -> None:
        create(plane, ns, name, {"model": model, "input": {"prompt": prompt}, **spec})

    # The finished ones first; later steps inject faults that the next request of their kind must meet.
    make("succeeded", quick)
    make("failed", quick, "fake:nsfw")
    make("canceled-after-success", quick)
    make("canceled", slow)
    make("canceled-remotely", slow)
    make("running", slow)
    make("retrying", quick, "fake:pa", retry=LONG)
    wait_phase(custom_api, ns, "succeeded", "Succeeded")
    wait_phase(custom_api, ns, "failed", "Failed")
    wait_phase(custom_api, ns, "canceled-after-success", "Succeeded")
    cancel(plane, ns, "canceled-after-success")  # after the end: a new generation that changes nothing
    wait_for(custom_api, ns, "canceled-after-success", lambda b: b["status"].get("observedGeneration") == 2)
    make("edited", quick)
    make("edited-running", quick)
    wait_phase(custom_api, ns, "edited", "Succeeded")
    wait_phase(custom_api, ns, "edited-running", "Succeeded")
    make("edited", quick, "a lighthouse in the fog")  # kubectl apply of the edited manifest
    make("edited-running", slow, "a lighthouse in the fog")
    now_2 = lambda body: (body["status"].get("observedGeneration"), body["status"].get("phase"))  # noqa: E731
    wait_for(custom_api, ns, "edited", lambda b: now_2(b) == (2, "Succeeded"))
    wait_for(custom_api, ns, "edited-running", lambda b: now_2(b) == (2, "Running"))
    wait_phase(custom_api, ns, "canceled", "Running")
    cancel(plane, ns, "canceled")
    remote = wait_phase(custom_api, ns, "canceled-remotely", "Running")
    fake.cancel(remote["status"]["prediction"]["id"])
    wait_phase(custom_api, ns, "canceled", "Canceled")
    wait_phase(custom_api, ns, "canceled-remotely", "Canceled")
    wait_for(custom_api, ns, "retrying", lambda b: b["status"].get("retries") == 1)
    wait_for(custom_api, ns, "running", lambda b: (b["status"].get("progress") or 0) > 0)

    fake.inject(Fault.server_error(503).on("create"))
    make("pending-retry", quick, retry=LONG)
    wait_for(custom_api, ns, "pending-retry", lambda b: b["status"].get("retries") == 1)
    fake.inject(Fault.slow(20).on("file"))  # the output's download hangs: the copy outlasts a progress interval
    make("uploading", quick)
    idle = fresh_namespace(plane, "gitops-idle")  # no operator watches it: the status is the CRD's default
    create(plane, idle, "pending", {"model": quick, "input": {"prompt": "a lighthouse"}})
    wait_phase(custom_api, ns, "uploading", "Uploading")

    objects = listed(plane, ns, idle)
    by_name = {obj["metadata"]["name"]: obj for obj in objects}
    assert set(by_name) == set(EXPECTED)
    assert by_name["pending"]["status"] == {
        **conditions.initial_status(),
        "attempts": 0,
        "retries": 0,
        "url": "",
    }  # what the API server fills in, at no write
    assert (by_name["pending-retry"]["status"]["phase"], by_name["retrying"]["status"]["phase"]) == (
        "Pending",
        "Running",
    )

    verdicts = {
        "kstatus": checks.kstatus(objects),
        "argocd bundled": checks.argocd_bundled(CUSTOMIZATIONS, objects),
        "argocd-cm": checks.argocd_configmap(installed_argocd_cm(plane, tmp_path / "argocd-cm.yaml"), objects),
    }
    for tool, answers in verdicts.items():
        column = 0 if tool == "kstatus" else 1
        got = {a["name"]: (a["status"], a.get("error")) for a in answers}
        assert got == {name: (want[column], None) for name, want in EXPECTED.items()}, tool
    kstatus_of = {a["name"]: a for a in verdicts["kstatus"]}
    argocd_of = {a["name"]: a for a in verdicts["argocd-cm"]}
    for name in EXPECTED:  # the table in the README, as measured (pytest -s shows it)
        k, a, phase = kstatus_of[name], argocd_of[name], by_name[name]["status"]["phase"]
        print(f"{name:23} {phase:9} {k['status']:10} {k['message'][:70]!r:72} {a['status']:11} {a['message'][:60]!r}")
    messages = {a["name"]: a["message"] for a in verdicts["kstatus"]}
    assert messages["failed"] == by_name["failed"]["status"]["message"]  # Flux shows the Stalled message
    assert messages["retrying"] == by_name["retrying"]["status"]["message"]  # ...and the Reconciling one
    argocd = {a["name"]: a["message"] for a in verdicts["argocd-cm"]}
    assert argocd["running"].startswith("Running ") and "%" in argocd["running"]
    assert argocd["retrying"].startswith("Running (retry 1): ")

    for name in ("running", "retrying", "pending-retry", "edited-running"):  # leave nothing waiting for the session
        cancel(plane, ns, name)


def synthetic(status: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    """A MediaGeneration with ``status``, as the API server would hold it."""
    return {
        "apiVersion": "mediagen.fleek.xyz/v1alpha1",
        "kind": "MediaGeneration",
        "metadata": {"name": "gen", "namespace": "ns", "generation": generation},
        "spec": {"model": "a/b"},
        "status": status,
    }


def test_kstatus_reads_every_status_write_of_the_lifecycle_as_documented(checks: Checks) -> None:
    """Each write of the status patch functions, judged by kstatus: the table in mediagen.api.conditions."""
    now = Prediction(id="p1", status="processing")
    fresh = conditions.initial_status()

    def after(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        return status | patch["status"]

    def view(status: dict[str, Any], generation: int = 1) -> View:
        return View.from_body(synthetic(status, generation))

    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    running = after(fresh, patches.record_patch(view(fresh), now, 1, t))
    retrying = after(running, patches.retry_patch(view(running), Failure(Kind.TRANSIENT, "X", "x"), 5, None, t))
    uploading = after(running, patches.progress_patch(view(running), Phase.UPLOADING, 100, None, t))
    done = Memory(prediction=Prediction(id="p1", status="succeeded"), outputs=[StoredOutput(url="u", key="k")])
    succeeded = after(running, patches.finish_patch(view(running), done, Phase.SUCCEEDED, "Succeeded", "ok", t))
    failed = after(running, patches.finish_patch(view(running), Memory(), Phase.FAILED, "ModelFailed", "no", t))
    canceled = after(running, patches.finish_patch(view(running, 2), Memory(), Phase.CANCELED, "Canceled", "c", t))
    remote = after(running, patches.finish_patch(view(running), Memory(), Phase.CANCELED, "CanceledRemotely", "r", t))
    observed = after(succeeded, patches.observe_patch(view(succeeded, 2), t))

    # The prompt of the succeeded one edited (generation 2): the new generation's writes, each resetting what the
    # first one had written.
    def edited(status: dict[str, Any]) -> View:
        body = synthetic(status, 2)
        body["spec"] = {"model": "a/b", "input": {"prompt": "edited"}}
        return View.from_body(body)

    def merged(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in after(status, patch).items() if v is not None}

    rerunning = merged(succeeded, patches.record_patch(edited(succeeded), Prediction(id="p2", status="starting"), 2, t))
    redone = Memory(prediction=Prediction(id="p2", status="succeeded"), prediction_attempt=2, outputs=done.outputs)
    rerun = merged(rerunning, patches.finish_patch(edited(rerunning), redone, Phase.SUCCEEDED, "Succeeded", "ok", t))
    refailed = merged(failed, patches.finish_patch(edited(failed), Memory(), Phase.FAILED, "ModelFailed", "no", t))
    cases = [
        (synthetic(fresh), "InProgress"),
        (synthetic(running), "InProgress"),
        (synthetic(retrying), "InProgress"),
        (synthetic(uploading), "InProgress"),
        (synthetic(succeeded), "Current"),
        (synthetic(failed), "Failed"),
        (synthetic(canceled, 2), "Current"),
        (synthetic(remote), "Failed"),
        (synthetic(running, 2), "InProgress"),  # spec.cancel just set: the status is of generation 1
        (synthetic(succeeded, 2), "InProgress"),  # a finished one edited, before the operator acknowledged it
        (synthetic(observed, 2), "Current"),  # ...and after
        (synthetic(rerunning, 2), "InProgress"),  # the prompt edited: generation 2 recorded its prediction
        (synthetic(rerun, 2), "Current"),  # ...and succeeded
        (synthetic(refailed, 2), "Failed"),  # a new generation that failed at once (e.g. an invalid input)
    ]
    assert rerunning["requestHash"] != succeeded["requestHash"] and "completionTime" not in rerunning
    assert rerunning["outputs"] == [] and rerun["prediction"]["id"] == "p2"
    assert [a["status"] for a in checks.kstatus([obj for obj, _ in cases])] == [want for _, want in cases]
    # Before this change only Succeeded was written: kstatus called the ones in flight and the failed ones done.
    only_succeeded = [
        {**s, "conditions": [c for c in s["conditions"] if c["type"] == "Succeeded"]} for s in (running, failed)
    ]
    assert [a["status"] for a in checks.kstatus([synthetic(s) for s in only_succeeded])] == ["Current", "Current"]


@pytest.mark.parametrize(
    ("stdin", "error"),
    [
        ("", "no objects in the input"),
        ("[1, 2]", "not an object"),
        ('{"kind": "MediaGeneration"}', "without apiVersion or kind"),
        ('{"apiVersion": "v1", "kind": "List", "items": [3]}', "items[0]"),
        ("{not json", "document 1"),
    ],
)
def test_the_harnesses_refuse_bad_input_with_a_clear_error(checks: Checks, stdin: str, error: str) -> None:
    for tool, args in (("kstatus", []), ("argocd-health", ["--resource-customizations", str(CUSTOMIZATIONS)])):
        result = subprocess.run(
            [str(checks.folder / tool), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2 and error in result.stderr, (tool, result.stderr)
    with pytest.raises(ChecksError):
        checks.kstatus([{"kind": "NoAPIVersion"}])
