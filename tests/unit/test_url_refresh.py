"""Presigned URLs are signed again before they expire, at most one status write per re-sign interval; public URLs
cost nothing. The decision, the patch and the signing, run over weeks of virtual time."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from mediagen.api.types import MediaGenerationSpec, StoredOutput, request_hash
from mediagen.controller.outputs import resign
from mediagen.controller.wiring import URL_REFRESH_FRACTION
from mediagen.reconcile.decide import Pacing, decide
from mediagen.reconcile.state import DeleteResource, Done, Memory, RefreshURLs, View, Wait
from mediagen.reconcile.status_patches import urls_patch
from mediagen.storage.base import ObjectURL

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WEEK = 7 * 86400
PACING = Pacing(url_refresh_before_seconds=WEEK * URL_REFRESH_FRACTION)


def ts(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def succeeded(expires: dt.datetime | None, ttl: int | None = None, outputs: int = 2) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": "Succeeded",
        "completionTime": ts(T0),
        "outputs": [{"url": f"https://s3/{i}?sig=old", "key": f"ns/n/uid/p/{i}.png"} for i in range(outputs)],
        "url": "https://s3/0?sig=old",
    }
    if expires is not None:
        status["urlExpiresAt"] = ts(expires)
    spec: dict[str, Any] = {"model": "a/b"}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    status["requestHash"] = request_hash(MediaGenerationSpec.model_validate(spec))
    return {"metadata": {"name": "n", "namespace": "ns", "uid": "uid"}, "spec": spec, "status": status}


def step(body: dict[str, Any], now: dt.datetime, pacing: Pacing = PACING) -> object:
    return decide(View.from_body(body), Memory(), now, pacing)


def test_presigned_urls_wait_until_a_quarter_of_their_life_is_left_then_refresh() -> None:
    expires = T0 + dt.timedelta(seconds=WEEK)
    due = expires - dt.timedelta(seconds=WEEK / 4)
    assert step(succeeded(expires), T0) == Wait(due)
    assert step(succeeded(expires), due) == RefreshURLs()
    assert step(succeeded(expires), expires + dt.timedelta(days=3)) == RefreshURLs()  # already expired: at once


def test_public_urls_and_other_endings_cost_nothing() -> None:
    assert step(succeeded(None), T0) == Done()
    assert step(succeeded(T0, outputs=0), T0) == Done()
    failed = succeeded(T0)
    failed["status"]["phase"] = "Failed"
    assert step(failed, T0 + dt.timedelta(days=30)) == Done()
    assert step(succeeded(T0), T0, Pacing()) == Done()  # re-signing off


def test_ttl_and_refresh_share_one_wait_and_deletion_wins() -> None:
    expires = T0 + dt.timedelta(seconds=WEEK)
    assert step(succeeded(expires, ttl=3600), T0) == Wait(T0 + dt.timedelta(hours=1))
    assert step(succeeded(expires, ttl=3600), T0 + dt.timedelta(hours=1)) == DeleteResource()
    assert step(succeeded(T0 + dt.timedelta(hours=1), ttl=30 * 86400), T0 + dt.timedelta(hours=2)) == RefreshURLs()


class SigningStore:
    """Signs URLs for ``ttl`` seconds from a virtual clock, as S3Store.url_for does."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.now = T0
        self.signed = 0

    def url_for(self, key: str) -> ObjectURL:
        self.signed += 1
        expires = self.now + dt.timedelta(seconds=self.ttl)
        return ObjectURL(url=f"https://s3/{key}?expires={expires.timestamp():.0f}", expires_at=expires)


class Deps:
    def __init__(self, store: SigningStore) -> None:
        self.store = store


def test_weeks_of_virtual_time_keep_every_url_valid_with_one_write_per_interval() -> None:
    store = SigningStore(WEEK)
    body = succeeded(T0 + dt.timedelta(seconds=WEEK))
    writes: list[dt.datetime] = []
    now, end = T0, T0 + dt.timedelta(days=60)
    while now < end:
        status = body["status"]
        expiry = dt.datetime.fromisoformat(status["urlExpiresAt"].replace("Z", "+00:00"))
        assert expiry > now, f"the status held an expired URL at {now}"  # what GET /status would return
        decided = step(body, now)
        if decided == RefreshURLs():
            store.now = now
            outputs = [StoredOutput.model_validate(o) for o in status["outputs"]]
            fresh, expires = resign(Deps(store), outputs)  # type: ignore[arg-type]
            body["status"].update(urls_patch(fresh, expires)["status"])
            writes.append(now)
            continue
        assert isinstance(decided, Wait)
        now = min(decided.until, now + dt.timedelta(hours=1))  # also look in between: the URL stays valid
    interval = dt.timedelta(seconds=WEEK * (1 - URL_REFRESH_FRACTION))
    assert all(b - a >= interval for a, b in itertools.pairwise(writes)), writes
    assert len(writes) == 11  # 60 days: the first at day 5¼, then every 5¼ days
    assert store.signed == 2 * len(writes)  # both outputs, each time
    assert body["status"]["url"] == body["status"]["outputs"][0]["url"] != "https://s3/0?sig=old"
