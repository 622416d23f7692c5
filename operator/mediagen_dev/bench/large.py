"""Large media: one output of 1 GiB (at full scale) copied from Replicate's file host into S3 by the operator.

Measured per run: the operator's RSS growth (peak ``VmHWM`` after the copy, reset with ``clear_refs`` just
before it, and 50 ms samples, minus the RSS before) and its transfer time: from the request for the output file
at the fake to the final status write (download, multipart upload, HEAD, presign, write). The yardstick, in the
same run against the same S3 server (moto in a child process, so its 1 GiB stays out of every measured process):
``boto3``'s ``upload_file`` of the same bytes from a local file, with boto3's default transfer settings and the
operator's client configuration. ``speed_ratio`` = median baseline time / median operator time (> 1 is faster
than the baseline). The speed at which the fake serves the file alone is recorded too (a plain streamed GET):
the operator cannot copy faster than its source.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from mediagen_dev.bench import audit, drive
from mediagen_dev.bench.bench_stack import BUCKET, Stack
from mediagen_dev.bench.config import MIB, Scale
from mediagen_dev.bench.fake import FakeService
from mediagen_dev.bench.proc import RssSampler, peak_rss_mib, reset_peak, rss_mib
from mediagen_dev.fake_replicate import ModelScript, OutputFile


def _write_file(path: Path, source: OutputFile) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for chunk in source.iter_chunks(MIB):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _baseline(stack: Stack, path: Path, key: str) -> float:
    client = stack.s3.client()
    try:
        began = time.perf_counter()
        client.upload_file(str(path), BUCKET, key)
        seconds = time.perf_counter() - began
        client.delete_object(Bucket=BUCKET, Key=key)
    finally:
        client.close()
    return seconds


def _source_seconds(url: str) -> float:
    began = time.perf_counter()
    with httpx.stream("GET", url, timeout=60.0) as response:
        response.raise_for_status()
        for _ in response.iter_raw(MIB):
            pass
    return time.perf_counter() - began


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``large_transfer``: ``rss_growth_mb`` (the largest of the runs) and ``speed_ratio``."""
    size = scale.large_bytes
    source = OutputFile(name="big.mp4", content_type="video/mp4", size=size, seed=3)
    path = stack.workdir / "big.mp4"
    sha256 = _write_file(path, source)
    namespace = stack.namespace("large")
    baseline: list[float] = []
    copies: list[dict[str, Any]] = []
    with FakeService() as service:
        model = ModelScript(queue_seconds=0.0, processing_seconds=0.0, logs=drive.QUIET, output="url", files=(source,))
        service.fake.add_model("bench/big", model)
        with stack.operator(namespace, service.base_url, "large") as operator:
            pid = operator.pid
            assert pid is not None
            for run_index in range(scale.large_runs):
                baseline.append(_baseline(stack, path, f"baseline/{run_index}/big.mp4"))
                name = f"big-{run_index}"
                time.sleep(scale.settle_seconds)
                rss_before = rss_mib(pid)
                reset_peak(pid)
                with RssSampler(pid, interval=0.05) as sampler:
                    drive.create_all(stack.custom, namespace, [drive.manifest(name, "bench/big")])
                    drive.wait_for_phases(stack.custom, namespace, run_index + 1, timeout=600)
                peak = max(peak_rss_mib(pid), sampler.peak)
                body = next(i for i in drive.list_raw(stack.custom, namespace) if i["metadata"]["name"] == name)
                status = body.get("status") or {}
                output = (status.get("outputs") or [{}])[0]
                prediction_id = (status.get("prediction") or {}).get("id", "")
                file_url = service.fake.snapshot(prediction_id)["output"]
                token = service.fake.predictions[prediction_id].file_token
                started = min(t.start for t in service.fake.timings if t.name == "file" and token in t.path)
                done = audit.last_status_write(audit.by_object(audit.writes(stack.plane, namespace))[name])
                assert done is not None
                copies.append(
                    {
                        "phase": status.get("phase"),
                        "seconds": round(done - started, 2),
                        "rss_before_mb": round(rss_before, 1),
                        "rss_peak_mb": round(peak, 1),
                        "rss_growth_mb": round(peak - rss_before, 1),
                        "size_ok": output.get("sizeBytes") == size,
                        "sha256_ok": output.get("sha256") == sha256,
                    }
                )
            source_seconds = _source_seconds(file_url)
    path.unlink()
    operator_seconds = median(c["seconds"] for c in copies)
    baseline_seconds = median(baseline)
    mb = size / MIB
    return {
        "large_transfer": {
            "bytes": size,
            "rss_growth_mb": max(c["rss_growth_mb"] for c in copies),
            "speed_ratio": round(baseline_seconds / operator_seconds, 3),
            "operator_mb_s": round(mb / operator_seconds, 1),
            "baseline_mb_s": round(mb / baseline_seconds, 1),
            "source_mb_s": round(mb / source_seconds, 1),
            "operator_runs": copies,
            "baseline_seconds": [round(s, 2) for s in baseline],
        }
    }
