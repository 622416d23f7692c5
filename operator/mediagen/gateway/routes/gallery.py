"""The gallery (``/``), a page per generation (``/g/{id}``), sign-in and the static files.

Browsers cannot send a bearer header on navigation, so the pages also accept a session from an HttpOnly,
``SameSite=Strict``, ``Secure`` cookie set by ``POST /login``: a short-lived signed value naming the tenant
(:mod:`mediagen.gateway.sessions`), never the API token. The cookie is honoured only here, never by the JSON API.
Every form post (sign-in, sign-out, cancel) must carry this site's ``Origin``: a missing or ``null`` one is
refused too, since a sandboxed frame or a redirect from any site sends ``null`` (login CSRF signs a victim into
the attacker's tenant) and SameSite does not stop same-site pages.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mediagen.gateway import pages
from mediagen.gateway.auth import AuthError, Tenant
from mediagen.gateway.cluster import NotFound
from mediagen.gateway.deps import DepsDep, GatewayDeps, client_of, limit_rate
from mediagen.gateway.problems import ProblemError
from mediagen.gateway.resources import to_view
from mediagen.gateway.schemas import MAX_NAME_LENGTH, NAME_PATTERN

router = APIRouter(include_in_schema=False)

COOKIE = "mediagen_session"
_SAFE_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")

PageId = Annotated[str, Path(pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)]
Fragment = Annotated[bool, Query(description="Only the live section, for the refresher.")]


async def _page_tenant(request: Request, deps: GatewayDeps) -> Tenant | None:
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE)
    try:
        if header:
            tenant = await deps.authenticator.authenticate(header, client_of(request))
        else:
            session = deps.sessions.open(cookie) if cookie else None
            if session is None:
                return None
            tenant = await deps.authenticator.resume(session)
    except AuthError as err:
        deps.metrics.auth_failures.labels(reason=err.reason).inc()
        return None
    limit_rate(deps, tenant)  # the pages count against the token's rate like the API does
    return tenant


def _html(markup: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(markup, status_code=status, headers=pages.HTML_HEADERS)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/login" if target == "/" else f"/login?next={target}"
    return RedirectResponse(location, status_code=303)


@router.get("/")
async def gallery(request: Request, deps: DepsDep, fragment: Fragment = False) -> Response:
    """The tenant's recent generations."""
    tenant = await _page_tenant(request, deps)
    if tenant is None:
        return _to_login(request)
    items = await deps.generations.recent(tenant, deps.settings.gallery_size)
    views = [to_view(item, str(request.url_for("get_status", id=item["metadata"]["name"]))) for item in items]
    base = str(request.base_url)
    return _html(pages.gallery_live(views, base) if fragment else pages.gallery_page(views, tenant.namespace, base))


@router.get("/g/{id}")
async def detail(request: Request, id: PageId, deps: DepsDep, fragment: Fragment = False) -> Response:
    """One generation."""
    tenant = await _page_tenant(request, deps)
    if tenant is None:
        return _to_login(request)
    try:
        body = await deps.generations.get(tenant, id)
    except NotFound:
        return _html(pages.not_found_page(tenant.namespace), status=404)
    view = to_view(body, str(request.url_for("get_status", id=id)))
    return _html(pages.detail_live(view) if fragment else pages.detail_page(view, tenant.namespace))


@router.post("/g/{id}/cancel")
async def cancel(request: Request, id: PageId, deps: DepsDep) -> Response:
    """The detail page's cancel button."""
    _same_origin(request)
    tenant = await _page_tenant(request, deps)
    if tenant is None:
        return _to_login(request)
    try:
        await deps.generations.cancel(tenant, id)
    except NotFound:
        return _html(pages.not_found_page(tenant.namespace), status=404)
    return RedirectResponse(f"/g/{id}", status_code=303)


@router.get("/login")
async def login_form(next: str = "/") -> Response:
    """The sign-in form."""
    return _html(pages.login_page(next_path=_safe_next(next)))


@router.post("/login")
async def login(request: Request, deps: DepsDep) -> Response:
    """Check the pasted token; on success keep it in the session cookie and go to the gallery."""
    _same_origin(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    next_path = _safe_next((form.get("next") or ["/"])[0])
    try:
        tenant = await deps.authenticator.authenticate(f"Bearer {token}", client_of(request))
        session = await deps.authenticator.session_for(tenant, deps.sessions.expiry())
    except AuthError as err:
        deps.metrics.auth_failures.labels(reason=err.reason).inc()
        return _html(pages.login_page("That token is not valid.", next_path), status=401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        deps.sessions.issue(session),
        max_age=int(deps.sessions.lifetime),
        httponly=True,
        samesite="strict",
        secure=deps.settings.cookie_secure,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget the session cookie."""
    _same_origin(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The gallery's stylesheet and script (a fixed list: no file system access)."""
    found = pages.STATIC.get(name)
    if found is None:
        raise ProblemError(404, "not-found", "no such file")
    content, media_type = found
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


def _safe_next(value: str) -> str:
    """Only a local path: never an open redirect to another site."""
    return value if _SAFE_NEXT.match(value) else "/"


def _same_origin(request: Request) -> None:
    """Refuse a form post unless its Origin is this site; see the module docstring.

    Browsers send Origin with every POST (same-origin ones too); a client that sends none is not a browser form and
    has the JSON API for its needs."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        raise ProblemError(403, "cross-origin", "form posts must come from this site's pages (Origin is missing)")
    # Hosts only: behind a TLS-terminating proxy the scheme seen here may differ from the browser's.
    if urlsplit(origin).netloc != request.url.netloc:
        raise ProblemError(403, "cross-origin", "cross-origin form posts are not accepted")
