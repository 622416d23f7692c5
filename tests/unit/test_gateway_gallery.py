"""The gallery in process: sign-in with a cookie, escaping of everything a caller controls, the live
refresh markers, and that the cookie opens the HTML pages only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mediagen.gateway import GatewaySettings, build_deps, create_app
from mediagen.gateway.pages import esc, safe_url
from mediagen.gateway.routes.gallery import COOKIE
from mediagen.gateway.sessions import Session, SessionSigner
from tests.support.memory_cluster import MemoryCluster

SITE = "https://gw.test"
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@dataclass
class Site:
    cluster: MemoryCluster
    client: httpx.AsyncClient
    token: str


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    cluster = MemoryCluster()
    token = cluster.add_api_token("team-a")
    settings = GatewaySettings(namespace="mediagen-system", token_refresh_seconds=0.01, token_cache_seconds=0.01)
    app = create_app(build_deps(settings, cluster))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    # Browsers send Origin with every POST; tests that need another (or none) say so.
    async with httpx.AsyncClient(transport=transport, base_url=SITE, headers={"Origin": SITE}) as client:
        yield Site(cluster, client, token)


def put(site: Site, name: str, prompt: str, status: dict[str, Any] | None = None, ns: str = "team-a") -> None:
    body: dict[str, Any] = {"metadata": {"name": name}, "spec": {"model": "owner/model", "input": {"prompt": prompt}}}
    if status:
        body["status"] = status
    site.cluster.put(ns, body)


async def login(site: Site) -> None:
    response = await site.client.post(
        "/login", content=f"token={site.token}&next=/", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" in cookie and "Max-Age=3600" in cookie
    assert site.token not in cookie and site.token.rsplit("_", 1)[-1] not in cookie  # a session, not the token


async def test_without_a_session_pages_redirect_to_the_sign_in_form(site: Site) -> None:
    response = await site.client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    detail = await site.client.get("/g/abc")
    assert detail.status_code == 303 and detail.headers["location"] == "/login?next=/g/abc"
    form = await site.client.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.text


async def test_a_wrong_token_does_not_sign_in(site: Site) -> None:
    response = await site.client.post(
        "/login", content="token=mg_nope", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 401 and "set-cookie" not in response.headers and "not valid" in response.text


async def test_the_gallery_shows_the_tenants_generations_newest_first_and_escaped(site: Site) -> None:
    put(site, "older", "a calm lake", {"phase": "Succeeded", "url": "https://media.example/a.png",
        "outputs": [{"url": "https://media.example/a.png", "key": "k", "contentType": "image/png"}]})  # fmt: skip
    site.cluster.objects["team-a"]["older"]["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    put(site, "evil", EVIL, {"phase": "Running", "progress": 40})
    put(site, "failed", "a storm", {"phase": "Failed", "reason": "ContentFlagged", "message": "NSFW"})
    put(site, "theirs", "not yours", ns="team-b")
    await login(site)
    page = await site.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert esc(EVIL)[:40] in html
    assert '<img src="https://media.example/a.png"' in html
    assert "ContentFlagged" in html and 'value="40"' in html and "not yours" not in html
    order = [m.group(1) for m in re.finditer(r'data-key="([^"]+)"', html)]
    assert order[-1] == "older" and set(order) == {"older", "evil", "failed"}
    assert "team-a" in html
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    # Under no-referrer, browsers send `Origin: null` with the page's own forms (which are then refused).
    assert page.headers["referrer-policy"] == "same-origin"


async def test_in_flight_cards_are_marked_for_the_refresher_and_the_fragment_is_just_the_live_part(site: Site) -> None:
    put(site, "busy", "working", {"phase": "Running"})
    put(site, "done", "finished", {"phase": "Succeeded", "url": "https://media.example/d.png"})
    await login(site)
    fragment = (await site.client.get("/?fragment=1")).text
    assert "<html" not in fragment and 'class="grid"' in fragment
    cards = dict(re.findall(r'data-key="([^"]+)" data-sig="[0-9a-f]+"( data-inflight)?', fragment))
    assert cards == {"busy": " data-inflight", "done": ""}
    again = (await site.client.get("/?fragment=1")).text
    assert again == fragment  # signatures are stable while nothing changes (no image reloads)


async def test_urls_that_are_not_http_never_reach_src_or_href(site: Site) -> None:
    assert safe_url("javascript:alert(1)") == "" and safe_url("data:text/html,x") == "" and safe_url("/rel") == ""
    assert safe_url('https://a.example/x?a=1&b="') == "https://a.example/x?a=1&amp;b=&quot;"
    put(site, "sneaky", "x", {"phase": "Succeeded", "url": "javascript:alert(1)"})
    await login(site)
    for path in ("/", "/g/sneaky"):
        assert "javascript:" not in (await site.client.get(path)).text


async def test_the_detail_page_shows_one_generation_and_hides_other_tenants(site: Site) -> None:
    put(site, "mine", "a red fox", {"phase": "Running", "progress": 10})
    put(site, "theirs", "secret", {"phase": "Running"}, ns="team-b")
    await login(site)
    page = await site.client.get("/g/mine")
    assert page.status_code == 200 and "a red fox" in page.text and "Cancel generation" in page.text
    assert 'data-refresh="/g/mine?fragment=1"' in page.text
    hidden = await site.client.get("/g/theirs")
    assert hidden.status_code == 404 and "secret" not in hidden.text


async def test_the_cancel_button_cancels_same_origin_only(site: Site) -> None:
    put(site, "mine", "a red fox", {"phase": "Running"})
    await login(site)
    evil = await site.client.post("/g/mine/cancel", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and site.cluster.objects["team-a"]["mine"]["spec"].get("cancel") is not True
    ok = await site.client.post("/g/mine/cancel")
    assert ok.status_code == 303 and site.cluster.objects["team-a"]["mine"]["spec"]["cancel"] is True


async def test_the_session_cookie_does_not_authenticate_the_json_api(site: Site) -> None:
    await login(site)
    assert (await site.client.get("/")).status_code == 200
    assert (await site.client.get("/generations")).status_code == 401
    assert (await site.client.post("/generate", json={"model": "a/b"})).status_code == 401


async def test_sign_in_never_redirects_off_site(site: Site) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = await site.client.post(
            "/login",
            content=f"token={site.token}&next={target}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.headers["location"] == "/", target


async def test_sign_out_clears_the_cookie(site: Site) -> None:
    await login(site)
    response = await site.client.post("/logout")
    assert response.status_code == 303 and f'{COOKIE}=""' in response.headers["set-cookie"]
    assert (await site.client.get("/")).status_code == 303


async def test_static_files_are_a_fixed_list(site: Site) -> None:
    css = await site.client.get("/static/gallery.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await site.client.get("/static/gallery.js")).headers["content-type"].startswith("text/javascript")
    for name in ("../settings.py", "%2e%2e%2fapp.py", "nope.css"):
        assert (await site.client.get(f"/static/{name}")).status_code == 404


async def test_an_empty_gallery_explains_how_to_start(site: Site) -> None:
    await login(site)
    page = (await site.client.get("/")).text
    assert "No generations yet" in page and "https://gw.test/generate" in page


async def test_the_gallery_reads_metadata_to_find_the_newest_and_only_those_whole(site: Site) -> None:
    # Issue 13: the gallery read up to 2,000 whole objects (each up to ~1 MiB then) to show 60.
    for i in range(300):
        put(site, f"g{i:03d}", f"prompt {i}")
        site.cluster.objects["team-a"][f"g{i:03d}"]["metadata"]["creationTimestamp"] = (
            f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"
        )
    await login(site)
    site.cluster.calls.clear()
    page = await site.client.get("/")
    shown = re.findall(r'data-key="(g\d+)"', page.text)
    assert shown == [f"g{i:03d}" for i in range(299, 275, -1)]  # the 24 newest, newest first
    assert site.cluster.calls.get("list_page") is None  # no list of whole objects
    assert site.cluster.calls["list_metadata"] == 2 and site.cluster.calls["get"] == 24


@pytest.mark.parametrize("origin", [None, "null", "https://evil.example"])
async def test_form_posts_without_this_sites_origin_are_refused(site: Site, origin: str | None) -> None:
    # Issue 13 item 10c: `Origin: null` (a sandboxed frame, a redirect) signed a victim into another tenant.
    put(site, "mine", "a red fox", {"phase": "Running"})
    await login(site)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin or ""}
    client = site.client
    if origin is None:
        del client.headers["Origin"]
        headers.pop("Origin")
    signin = await client.post("/login", content=f"token={site.token}", headers=headers)
    assert signin.status_code == 403 and "set-cookie" not in signin.headers
    cancel = await client.post("/g/mine/cancel", headers=headers)
    assert cancel.status_code == 403 and site.cluster.objects["team-a"]["mine"]["spec"].get("cancel") is not True
    signout = await client.post("/logout", headers=headers)
    assert signout.status_code == 403 and "set-cookie" not in signout.headers


async def test_the_session_ends_with_its_token_or_its_lifetime_and_cannot_be_forged(site: Site) -> None:
    await login(site)
    cookie = site.client.cookies[COOKIE]
    payload, signature = cookie.split(".")
    for forged in (f"{payload}.{signature[:-2]}AA", f"{payload[:-2]}.{signature}", site.token, "x"):
        site.client.cookies.set(COOKIE, forged, domain="gw.test")
        assert (await site.client.get("/")).status_code == 303, forged
    site.client.cookies.set(COOKIE, cookie, domain="gw.test")
    assert (await site.client.get("/")).status_code == 200
    site.cluster.secrets.clear()  # the token is revoked: the session ends once the token cache (10 ms) expires
    for _ in range(200):
        if (await site.client.get("/")).status_code == 303:
            break
        await asyncio.sleep(0.01)
    assert (await site.client.get("/")).status_code == 303


def test_sessions_expire() -> None:
    now = [1000.0]
    signer = SessionSigner(b"k" * 32, lifetime=60, clock=lambda: now[0])
    value = signer.issue(Session("team-a", "token/x", signer.expiry(), token_id="x", fingerprint="f"))
    assert signer.open(value) is not None
    now[0] += 61
    assert signer.open(value) is None
    assert SessionSigner(b"other" * 8).open(value) is None  # another key (another deployment) rejects it
