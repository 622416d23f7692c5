"""Logging for the operator: kopf's JSON lines (or text for ``mediagen dev``), and secrets redacted from every record.

The code never logs a secret on purpose (tokens are ``SecretStr``, the Replicate client scrubs its errors, output
URLs are logged without query strings). The :class:`RedactingFilter` is defence in depth against what nobody
thought of: an exception text that echoes a request, a library's debug line with a presigned URL. It sits on the
handlers, so it sees every record that is printed, whichever logger it came from.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import types
from collections.abc import Iterable
from typing import Any

import kopf

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6
"""Shorter configured values are not redacted literally: replacing every ``test`` in the logs protects nothing."""

# Query parameters and header fields that carry signatures or credentials (presigned S3/R2 URLs, signed
# webhooks, the AWS4 Authorization header).
_SIGNED_PARAM = re.compile(
    r"(?i)\b((?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|Credential|AWSAccessKeyId|sig)=)"
    r"[^&\s\"'<>,;]+"
)
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(?:Bearer|Token|Basic)\s+)?[^\s\"',;}]+")
_BEARER = re.compile(r"(?i)\b(Bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_REPLICATE_TOKEN = re.compile(r"\br8_[A-Za-z0-9]{20,}")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_AUTHORIZATION, rf"\g<1>{REDACTED}"),
    (_BEARER, rf"\g<1> {REDACTED}"),
    (_SIGNED_PARAM, rf"\g<1>{REDACTED}"),
    (_REPLICATE_TOKEN, REDACTED),
)
# What every LogRecord has; anything else on a record came from ``extra=`` and is scrubbed too.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class Redactor:
    """Removes configured secret values and anything shaped like a credential from text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def scrub(self, value: Any) -> Any:
        """``value`` with every string in it redacted (dicts, lists and tuples are copied, never mutated)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(item) for item in value)
        return value


class RedactingFilter(logging.Filter):
    """A handler filter that redacts a record's message, arguments, exception text and extra fields in place."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string must still be printed, and redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # Formatters print exc_text when exc_info is gone; the traceback's text is what needs scrubbing.
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str | dict | list | tuple):
                setattr(record, key, redact.scrub(value))
        return True


def configure_logging(
    *, log_format: str, level: str, verbose: bool = False, secrets: Iterable[str | None] = ()
) -> RedactingFilter:
    """Set up the root logger: kopf's formatter (``json`` or ``text``), the level, quiet libraries, redaction.

    Warnings and uncaught exceptions (also in threads) go through logging too, so every line the process
    prints is in the configured format and redacted."""
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else level.upper())
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        # kopf logs every handled watch event at INFO ("Handler 'on_event' succeeded"): one line per event
        # is noise at scale; the worker logs what actually happens to each resource.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    redacting = RedactingFilter(Redactor(secrets))
    for handler in root.handlers:
        handler.addFilter(redacting)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return redacting


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
    logging.getLogger("mediagen").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    exc = args.exc_value or args.exc_type()
    name = args.thread.name if args.thread else "?"
    logging.getLogger("mediagen").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, exc, args.exc_traceback)
    )
