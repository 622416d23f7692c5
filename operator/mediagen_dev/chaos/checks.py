"""The invariants every scenario checks afterwards: one prediction per attempt, every output in the bucket with its
recorded size and digest, no multipart upload left open, no resource held by a finalizer after deletion."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediagen_dev.chaos.chaos_stack import Stack, phase_of


def duplicate_predictions(stack: Stack, uids: Iterable[str]) -> int:
    """Predictions beyond the first per (resource, attempt), from the markers the fake Replicate saw."""
    wanted = set(uids)
    extra = 0
    for marker, count in stack.fake.creates_by_marker.items():
        if marker.rsplit(".", 1)[0] in wanted and count > 1:
            extra += count - 1
    return extra


def predictions_of(stack: Stack, uids: Iterable[str]) -> int:
    """How many predictions were created for these resources in all."""
    wanted = set(uids)
    return sum(n for marker, n in stack.fake.creates_by_marker.items() if marker.rsplit(".", 1)[0] in wanted)


@dataclass
class OutputCheck:
    """What :func:`lost_outputs` found."""

    checked: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)


def lost_outputs(stack: Stack, bodies: Mapping[str, Mapping[str, Any]]) -> OutputCheck:
    """Every output a Succeeded resource records must be in the bucket with the recorded size and sha256."""
    result = OutputCheck()
    for name, body in sorted(bodies.items()):
        if phase_of(body) != "Succeeded":
            continue
        outputs = (body.get("status") or {}).get("outputs") or []
        if not outputs:
            result.lost += 1
            result.problems.append(f"{name}: Succeeded without outputs")
        for output in outputs:
            result.checked += 1
            problem = _check_object(stack, output)
            if problem:
                result.lost += 1
                result.problems.append(f"{name}: {problem}")
    return result


def _check_object(stack: Stack, output: Mapping[str, Any]) -> str | None:
    key = str(output.get("key"))
    try:
        response = stack.storage.get_object(Bucket=stack.bucket, Key=key)
    except (ClientError, BotoCoreError) as err:
        return f"{key} is missing ({type(err).__name__})"
    digest, size = hashlib.sha256(), 0
    for chunk in response["Body"].iter_chunks(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    if size != output.get("sizeBytes"):
        return f"{key} has {size} bytes, the status says {output.get('sizeBytes')}"
    if digest.hexdigest() != output.get("sha256"):
        return f"{key} does not match its recorded sha256"
    return None


def orphan_uploads(stack: Stack, prefix: str) -> list[str]:
    """Multipart uploads still open under ``prefix`` (each holds storage nobody will ever see)."""
    found: list[str] = []
    params: dict[str, Any] = {"Bucket": stack.bucket, "Prefix": prefix}
    while True:
        page = stack.storage.list_multipart_uploads(**params)
        found.extend(f"{upload['Key']} ({upload['UploadId'][:12]}…)" for upload in page.get("Uploads", []))
        if not page.get("IsTruncated"):
            return found
        params["KeyMarker"] = page.get("NextKeyMarker", "")
        params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


def multipart_objects(stack: Stack, prefix: str) -> int:
    """Objects under ``prefix`` stored by a multipart upload (their ETag ends in ``-<parts>``)."""
    count = 0
    for page in stack.storage.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix):
        count += sum(1 for obj in page.get("Contents", []) if "-" in str(obj.get("ETag", "")))
    return count


def stuck_after_deletion(stack: Stack, namespace: str, timeout: float) -> list[str]:
    """Resources of ``namespace`` still present ``timeout`` seconds after their deletion was asked for."""
    deadline = time.monotonic() + timeout
    remaining: list[str] = []
    while time.monotonic() < deadline:
        remaining = sorted(stack.generations(namespace))
        if not remaining:
            return []
        time.sleep(0.5)
    return remaining


def operator_crashes(log: str) -> list[str]:
    """Lines of an operator log that show a crash or an unhandled error (not an expected, handled failure)."""
    markers = ("worker crashed", "Traceback (most recent call last)", "Unhandled exception", '"levelname": "CRITICAL"')
    return [line[:300] for line in log.splitlines() if any(marker in line for marker in markers)]
