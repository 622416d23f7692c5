"""Scenario 8: memory as the kubelet sees it. With 2,000 generations in flight (`--scale full`; 100 at smoke scale)
the operator stays under its chart limit, read from its container's cgroup (and, on the local node, from the pod's
cgroup on the host), and is never OOMKilled."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, wait_until
from tests.e2e.fakes import Fakes
from tests.e2e.generations import LONG, create_many, generation, phases

# Full scale runs long on two cores (the module's fixture teardown counts too).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

RELEASE = "mem"
LIMIT = "512Mi"  # the chart's default operator.resources.limits.memory

# Runs inside the operator's container: its cgroup's memory (v1 or v2 files) and PID 1's resident set.
READ_MEMORY = """
import json, os
def read(*names):
    for name in names:
        try:
            return int(open(name).read().split()[0])
        except (OSError, ValueError):
            continue
    return None
cg = "/sys/fs/cgroup/"
status = dict(line.split(":", 1) for line in open("/proc/1/status") if ":" in line)
print(json.dumps({
    "usage": read(cg + "memory.current", cg + "memory/memory.usage_in_bytes"),
    "peak": read(cg + "memory.peak", cg + "memory/memory.max_usage_in_bytes"),
    "limit": read(cg + "memory.max", cg + "memory/memory.limit_in_bytes"),
    "rss_kb": int(status["VmRSS"].split()[0]),
    "hwm_kb": int(status["VmHWM"].split()[0]),
}))
"""


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, quiet_fakes: Fakes, full_scale: bool) -> Iterator[str]:
    """The operator allowed as many predictions in flight as the scenario makes, at its default memory limit."""
    ns = cluster.create_namespace("e2e-memory", restricted=True)
    try:
        quiet_fakes.secrets(ns)
        cluster.helm_install(
            RELEASE, ns, *quiet_fakes.chart_values(),
            "--set", f"operator.watchNamespace={ns}",
            "--set", f"settings.maxInflight={2000 if full_scale else 100}",
            "--set", "settings.replicateRequestsPerSecond=1000",
            "--set", "settings.replicateCreatesPerSecond=1000",
            "--set", "settings.pollMaxSeconds=15",
        )  # fmt: skip
        yield ns
    finally:
        cluster.remove_release(RELEASE, ns, delete_timeout=1200 if full_scale else 300)


def pod_cgroup_peak(uid: str) -> int | None:
    """The pod's memory high-water mark from its cgroup on this host (the local node's cgroupfs layout, v1)."""
    for qos in ("", "burstable/", "besteffort/"):
        path = Path(f"/sys/fs/cgroup/memory/kubepods/{qos}pod{uid}/memory.max_usage_in_bytes")
        if path.exists():
            return int(path.read_text())
    return None


def test_operator_stays_under_its_limit_with_thousands_in_flight(
    cluster: Cluster, namespace: str, full_scale: bool
) -> None:
    count = 2000 if full_scale else 100
    create_many(cluster, [generation(f"m-{i:04d}", namespace, model=LONG) for i in range(count)])
    wait_until(
        lambda: sum(p == "Running" for p in phases(cluster, namespace).values()) == count,
        900 if full_scale else 180,
        f"{count} generations Running",
        interval=2,
    )
    pod = cluster.pods(namespace, "app.kubernetes.io/component=operator")[0]
    name = pod["metadata"]["name"]
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == LIMIT

    samples = []
    deadline = time.monotonic() + (60 if full_scale else 20)
    while time.monotonic() < deadline:
        out = cluster.kubectl("exec", "-n", namespace, name, "--", "python", "-c", READ_MEMORY)
        samples.append(json.loads(out.strip().splitlines()[-1]))
        time.sleep(2)
    limit = 512 * 1024**2
    assert samples[-1]["limit"] == limit, "the kubelet applied the chart's limit to the container's cgroup"
    peak = max(s["peak"] or s["usage"] for s in samples)
    rss_mb = max(s["rss_kb"] for s in samples) / 1024
    assert peak < limit, f"cgroup peak {peak / 1024**2:.0f} MiB reached the {LIMIT} limit"

    status = cluster.get("pod", name, "-n", namespace)["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0, status
    assert "terminated" not in (status.get("lastState") or {}), status
    figures = {
        f"operator_rss_mb_{count}": round(rss_mb, 1),
        f"operator_cgroup_peak_mb_{count}": round(peak / 1024**2, 1),
    }
    host_peak = pod_cgroup_peak(pod["metadata"]["uid"]) if cluster.config.platform == "local-node" else None
    if host_peak is not None:
        assert host_peak < limit + 64 * 1024**2  # the pod's cgroup also holds the sandbox's pause process
        figures[f"pod_cgroup_peak_mb_{count}"] = round(host_peak / 1024**2, 1)
    cluster.record(**figures)
