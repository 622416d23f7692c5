"""The gallery's HTML, rendered with f-strings. Every interpolated value goes through :func:`esc` (text and
attributes) or :func:`safe_url` (``src``/``href``: http(s) only), so nothing a caller put in a prompt, nor
anything in a status, can inject markup or script. Pages load one stylesheet and one script from
``/static`` and nothing inline, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

from mediagen.api.types import Phase
from mediagen.gateway.schemas import GenerationView

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src http: https: data:; "
    "media-src http: https: data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    # Not the API's no-referrer: under it a browser sends `Origin: null` with the pages' own form posts (Fetch
    # standard, "append a request Origin header"), which the gallery refuses. same-origin keeps referrers off
    # other sites (the media URLs) all the same.
    "Referrer-Policy": "same-origin",
}

_IN_FLIGHT = (Phase.PENDING, Phase.RUNNING, Phase.UPLOADING)
_PROMPT_PREVIEW = 160
_EAGER_CARDS = 12  # a screenful: these load at once, the rest when scrolled to


def _asset(name: str) -> bytes:
    return (resources.files("mediagen.gateway") / "static" / name).read_bytes()


STATIC: dict[str, tuple[bytes, str]] = {
    "gallery.css": (_asset("gallery.css"), "text/css; charset=utf-8"),
    "gallery.js": (_asset("gallery.js"), "text/javascript; charset=utf-8"),
}
"""The static files, by name: content and media type."""
_ASSET_VERSION = hashlib.sha256(b"".join(c for c, _ in STATIC.values())).hexdigest()[:10]


def esc(value: object) -> str:
    """HTML-escape ``value`` for text and (double-quoted) attribute positions."""
    return html.escape(str(value), quote=True)


def safe_url(url: str | None) -> str:
    """``url`` escaped for an attribute if it is http(s); "" otherwise (no javascript:, data: or relative)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return esc(url) if parts.scheme in ("http", "https") and parts.netloc else ""


def prompt_of(view: GenerationView) -> str:
    """What to show as the generation's title: its prompt, else its first string input."""
    prompt = view.input.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return prompt.strip()
    return next((v.strip() for v in view.input.values() if isinstance(v, str) and v.strip()), "")


def _target(view: GenerationView) -> str:
    return view.model or (f"deployment {view.deployment}" if view.deployment else "")


def _timestamp(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    utc = value.astimezone(dt.UTC)
    return f'<time datetime="{esc(utc.isoformat())}">{esc(utc.strftime("%Y-%m-%d %H:%M UTC"))}</time>'


def _badge(phase: Phase) -> str:
    return f'<span class="badge phase-{esc(phase.value.lower())}">{esc(phase.value)}</span>'


def _progress(view: GenerationView) -> str:
    if view.phase not in _IN_FLIGHT:
        return ""
    if view.progress is None:
        return '<progress class="bar" aria-label="progress"></progress>'
    return f'<progress class="bar" max="100" value="{int(view.progress)}" aria-label="progress"></progress>'


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def _media(view: GenerationView, *, big: bool, index: int = 0, lazy: bool = False) -> str:
    """The output (or a placeholder saying where the generation is)."""
    output = view.outputs[index] if len(view.outputs) > index else None
    src = safe_url(output.url if output else view.url if index == 0 else None)
    alt = esc(prompt_of(view)[:_PROMPT_PREVIEW] or view.id)
    if view.phase is Phase.SUCCEEDED and src:
        kind = output.content_type if output else "image/"
        if kind.startswith("video/"):
            controls = " controls" if big else ""
            return f'<video src="{src}" muted playsinline preload="metadata"{controls}></video>'
        if kind.startswith("image/") or not kind:
            loading = "lazy" if lazy else "eager"
            return f'<img src="{src}" alt="{alt}" loading="{loading}" decoding="async">'
        return f'<a class="file" href="{src}">{esc(kind)} file</a>'
    if view.phase in _IN_FLIGHT:
        label = view.phase.value + (f" · {view.progress}%" if view.progress is not None else "")
        return f'<div class="placeholder working"><span class="spinner"></span><span>{esc(label)}</span></div>'
    reason = view.error.reason if view.error else view.phase.value
    return f'<div class="placeholder ended"><span class="glyph">!</span><span>{esc(reason)}</span></div>'


def _signature(markup: str) -> str:
    return hashlib.sha256(markup.encode()).hexdigest()[:16]


def _keyed(tag: str, key: str, classes: str, inner: str, in_flight: bool, extra: str = "") -> str:
    """An element the refresher can keep as is when its signature did not change (no image reload)."""
    flag = " data-inflight" if in_flight else ""
    return f'<{tag} class="{classes}" data-key="{esc(key)}" data-sig="{_signature(inner)}"{flag}{extra}>{inner}</{tag}>'


def card(view: GenerationView, position: int = 0) -> str:
    """One generation in the grid; cards beyond the first screenful load their image lazily."""
    prompt = prompt_of(view)
    shown = prompt if len(prompt) <= _PROMPT_PREVIEW else prompt[: _PROMPT_PREVIEW - 1] + "…"
    href = f"/g/{quote(view.id)}"
    inner = (
        f'<a class="thumb" href="{esc(href)}">{_media(view, big=False, lazy=position >= _EAGER_CARDS)}</a>'
        f'<div class="meta">'
        f'<a class="prompt" href="{esc(href)}" title="{esc(prompt)}">{esc(shown) or "<em>no prompt</em>"}</a>'
        f'<div class="row"><span class="model" title="{esc(_target(view))}">{esc(_target(view))}</span>'
        f"{_badge(view.phase)}</div>"
        f"{_progress(view)}"
        f'<div class="row small">{_timestamp(view.created_at)}<span class="id">{esc(view.id)}</span></div>'
        f"</div>"
    )
    return _keyed("article", view.id, f"card phase-{view.phase.value.lower()}", inner, view.phase in _IN_FLIGHT)


def _summary(views: list[GenerationView]) -> str:
    counts = {phase: sum(1 for v in views if v.phase is phase) for phase in Phase}
    in_flight = sum(counts[p] for p in _IN_FLIGHT)
    parts = [f"{len(views)} generation{'s' if len(views) != 1 else ''}"]
    if in_flight:
        parts.append(f'<span class="live-dot"></span>{in_flight} in flight')
    if counts[Phase.FAILED]:
        parts.append(f"{counts[Phase.FAILED]} failed")
    return '<p class="summary">' + " · ".join(parts) + "</p>"


def gallery_live(views: list[GenerationView], base_url: str) -> str:
    """The refreshable part of the gallery: the summary and the grid (or the empty state)."""
    if not views:
        example = json.dumps({"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a lighthouse at dawn"}})
        return (
            '<div class="empty"><h2>No generations yet</h2><p>Start one through the API:</p>'
            f"<pre>curl -X POST {esc(base_url)}generate \\\n  -H 'Authorization: Bearer $TOKEN' "
            f"-H 'Content-Type: application/json' \\\n  -d '{esc(example)}'</pre>"
            '<p>It appears here within seconds. <a href="/docs">API documentation</a></p></div>'
        )
    cards = "".join(card(v, i) for i, v in enumerate(views))
    return f'{_summary(views)}<div class="grid">{cards}</div>'


def gallery_page(views: list[GenerationView], namespace: str, base_url: str) -> str:
    """The gallery: the tenant's recent generations, refreshing while any is in flight."""
    live = gallery_live(views, base_url)
    return layout(
        "Gallery",
        namespace,
        f'<section id="live" data-refresh="/?fragment=1">{live}</section>',
    )


def _facts(view: GenerationView) -> str:
    rows: list[tuple[str, str]] = [
        ("Id", f"<code>{esc(view.id)}</code>"),
        ("Model" if view.model else "Deployment", f"<code>{esc(view.model or view.deployment or '')}</code>"),
        (
            "Phase",
            _badge(view.phase) + (" <em>cancel requested</em>" if view.cancel_requested and not view.done else ""),
        ),
    ]
    if view.progress is not None:
        rows.append(("Progress", f"{int(view.progress)}%"))
    if view.reason and view.reason != view.phase.value:
        rows.append(("Reason", esc(view.reason)))
    if view.message:
        rows.append(("Message", esc(view.message)))
    rows += [
        ("Created", _timestamp(view.created_at)),
        ("Started", _timestamp(view.start_time)),
        ("Finished", _timestamp(view.completion_time)),
    ]
    if view.attempts:
        rows.append(("Attempts", f"{view.attempts} ({view.retries} retr{'y' if view.retries == 1 else 'ies'})"))
    if view.prediction_id:
        rows.append(("Prediction", f"<code>{esc(view.prediction_id)}</code>"))
    if view.url_expires_at:
        rows.append(("URLs expire", _timestamp(view.url_expires_at)))
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows if v) + "</dl>"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return esc(value)
    return f"<code>{esc(json.dumps(value))}</code>"


def detail_live(view: GenerationView) -> str:
    """The refreshable part of a generation's page."""
    count = max(1, len(view.outputs))
    media = "".join(f'<figure class="frame">{_media(view, big=True, index=i)}</figure>' for i in range(count))
    prompt = prompt_of(view)
    cancel = ""
    if not view.done and not view.cancel_requested:
        cancel = (
            f'<form method="post" action="/g/{esc(quote(view.id))}/cancel" class="actions">'
            '<button type="submit" class="danger">Cancel generation</button></form>'
        )
    error = ""
    if view.error:
        error = f'<div class="alert"><strong>{esc(view.error.reason)}</strong> {esc(view.error.message)}</div>'
    inputs = "".join(f"<tr><th>{esc(k)}</th><td>{_value(v)}</td></tr>" for k, v in sorted(view.input.items()))
    outputs = "".join(
        f'<li><a href="{safe_url(o.url)}">output {i}</a> <span class="muted">{esc(o.content_type)} · '
        f"{_size(o.size_bytes)}</span></li>"
        for i, o in enumerate(view.outputs)
    )
    conditions = "".join(
        f"<tr><td>{esc(c.type)}</td><td>{esc(c.status)}</td><td>{esc(c.reason)}</td><td>{esc(c.message)}</td>"
        f"<td>{_timestamp(c.last_transition_time)}</td></tr>"
        for c in view.conditions
    )
    inner = (
        f'<div class="detail"><div class="media">{media}</div><div class="info">'
        f'<h1 class="title">{esc(prompt) or "<em>no prompt</em>"}</h1>'
        f"{_progress(view)}{error}{_facts(view)}{cancel}"
        f'<h2>Input</h2><table class="kv">{inputs or "<tr><td>(empty)</td></tr>"}</table>'
        + (f'<h2>Outputs</h2><ul class="outputs">{outputs}</ul>' if outputs else "")
        + (
            '<h2>Conditions</h2><table class="conditions"><tr><th>Type</th><th>Status</th><th>Reason</th>'
            f"<th>Message</th><th>Since</th></tr>{conditions}</table>"
            if conditions
            else ""
        )
        + "</div></div>"
    )
    return _keyed("div", view.id, "generation", inner, not view.done)


def detail_page(view: GenerationView, namespace: str) -> str:
    """One generation: its outputs, facts, input and conditions; refreshing while in flight."""
    refresh = f"/g/{quote(view.id)}?fragment=1"
    body = (
        '<nav class="crumbs"><a href="/">← Gallery</a></nav>'
        f'<section id="live" data-refresh="{esc(refresh)}">{detail_live(view)}</section>'
    )
    return layout(prompt_of(view)[:60] or view.id, namespace, body)


def not_found_page(namespace: str) -> str:
    """The generation does not exist (for this tenant)."""
    body = (
        '<div class="empty"><h2>Not found</h2><p>No such generation.</p>'
        '<p><a href="/">Back to the gallery</a></p></div>'
    )
    return layout("Not found", namespace, body)


def login_page(error: str = "", next_path: str = "/") -> str:
    """The sign-in form: paste an API token once; a short-lived session (never the token) is kept in a cookie."""
    message = f'<p class="alert">{esc(error)}</p>' if error else ""
    body = (
        '<div class="login"><h1>Sign in</h1><p class="muted">Paste your mediagen API token.</p>'
        f"{message}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<label for="token">API token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" spellcheck="false" '
        'placeholder="mg_…" required autofocus>'
        '<button type="submit">Open gallery</button></form></div>'
    )
    return layout("Sign in", None, body)


def layout(title: str, namespace: str | None, body: str) -> str:
    """The page around ``body``."""
    who = ""
    if namespace is not None:
        who = (
            f'<span class="tenant" title="your namespace">{esc(namespace)}</span>'
            '<a href="/docs">API</a>'
            '<form method="post" action="/logout"><button type="submit" class="link">Sign out</button></form>'
        )
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · mediagen</title>"
        f'<link rel="stylesheet" href="/static/gallery.css?v={_ASSET_VERSION}">'
        f'<script src="/static/gallery.js?v={_ASSET_VERSION}" defer></script>'
        "</head><body>"
        '<header class="top"><a class="brand" href="/"><span class="logo"></span>mediagen</a>'
        f'<nav class="who">{who}</nav></header>'
        f"<main>{body}</main>"
        "</body></html>"
    )
