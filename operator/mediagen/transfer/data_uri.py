"""``data:`` URIs (RFC 2397), decoded locally, and media types cleaned for the store.

Models may return outputs inline as ``data:`` URIs instead of file URLs (docs/replicate.md#outputs-and-data-retention).
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from mediagen.transfer.errors import OUTPUT_URL_REJECTED, TransferError, too_large

_TCHARS = r"[A-Za-z0-9!#$&^_.+-]+"
_MEDIA_TYPE = re.compile(rf"^{_TCHARS}/{_TCHARS}$")
_PARAM = re.compile(rf'^{_TCHARS}=(?:{_TCHARS}|"[^"\\\r\n]*")$')


def clean_content_type(value: str | None) -> str | None:
    """``value`` normalised (``type/subtype`` lower-cased, well-formed parameters kept), or ``None`` when it
    is missing, malformed or says nothing (``application/octet-stream``)."""
    if not value:
        return None
    media_type, *params = (part.strip() for part in value.split(";"))
    media_type = media_type.lower()
    if not _MEDIA_TYPE.match(media_type) or media_type in ("application/octet-stream", "binary/octet-stream"):
        return None
    kept = [p for p in params if _PARAM.match(p)]
    return "; ".join([media_type, *kept])


def decode_data_uri(uri: str, max_bytes: int) -> tuple[str, bytes]:
    """The content type and bytes of a ``data:`` URI (RFC 2397: base64 or percent-encoded)."""
    header, sep, payload = uri[5:].partition(",")
    if not sep:
        raise TransferError("malformed data: URI (no comma)", transient=False, reason=OUTPUT_URL_REJECTED)
    params = [p.strip() for p in header.split(";")]
    is_base64 = len(params) > 1 and params[-1].lower() == "base64"
    if is_base64:
        params.pop()
    media_type, rest = params[0], params[1:]
    if not media_type:
        # RFC 2397's default.
        media_type, rest = "text/plain", rest or ["charset=US-ASCII"]
    content_type = clean_content_type(";".join([media_type, *rest])) or "application/octet-stream"

    # Checked before decoding so a huge URI is not decoded only to be refused.
    estimate = len(payload) * 3 // 4 if is_base64 else len(payload)
    if estimate > max_bytes + 3:
        raise too_large(f"data: URI ({content_type})", max_bytes)
    raw = unquote_to_bytes(payload)
    if is_base64:
        compact = re.sub(rb"\s+", b"", raw).replace(b"-", b"+").replace(b"_", b"/")
        compact += b"=" * (-len(compact) % 4)
        try:
            data = base64.b64decode(compact, validate=True)
        except binascii.Error:
            raise TransferError(
                f"malformed data: URI ({content_type}): invalid base64",
                transient=False,
                reason=OUTPUT_URL_REJECTED,
            ) from None
    else:
        data = raw
    if len(data) > max_bytes:
        raise too_large(f"data: URI ({content_type})", max_bytes)
    return content_type, data
