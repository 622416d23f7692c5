"""Log redaction and the operator's logging setup: JSON lines, and no token, key or signature in any of them."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import kopf
import pytest

from mediagen.logging_setup import REDACTED, RedactingFilter, Redactor, configure_logging

TOKEN = "r8_Zx9fQw3LmN7pKt2VbC8dRy5HsJ4gUe6AoT1"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRESIGNED = (
    "https://acct.r2.cloudflarestorage.com/media/ns/gen/0.png?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fauto%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z"
    "&X-Amz-Expires=604800&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=0c6bd3e5f8a0d2b74e1c9f6a3b8d5e2f7a4c1b9e6d3f0a8c5b2e9f6d3a0c7b4e"
)
SIGNATURE = PRESIGNED.rsplit("=", 1)[1]


@pytest.fixture
def redact() -> Redactor:
    return Redactor([TOKEN, SECRET_KEY, None, "abc"])


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        (f"token is {TOKEN}!", TOKEN, "token is [REDACTED]!"),
        (f"secret={SECRET_KEY}", SECRET_KEY, "secret=[REDACTED]"),
        (f"GET {PRESIGNED}", SIGNATURE, "X-Amz-Signature=[REDACTED]"),
        (f"GET {PRESIGNED}", "AKIAEXAMPLE", "X-Amz-Credential=[REDACTED]&X-Amz-Date"),
        ("https://cdn.test/a.webp?Expires=1&Signature=abcDEF12~-_&Key-Pair-Id=K", "abcDEF12", "Signature=[REDACTED]&"),
        ("Authorization: Bearer r8_somethingelse", "r8_somethingelse", "Authorization: [REDACTED]"),
        ("{'authorization': 'Token 0123456789abcdef'}", "0123456789abcdef", "'authorization': '[REDACTED]'"),
        ("sent Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "eyJhbGci", "sent Bearer [REDACTED]"),
        ("another r8_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abc token", "r8_ABCDEFGH", "another [REDACTED] token"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/auto/s3/aws4_request, SignedHeaders=host, Signature=f00d",
            "f00d",
            "Credential=[REDACTED], SignedHeaders=host, Signature=[REDACTED]",
        ),
    ],
)
def test_secrets_and_signatures_are_redacted(redact: Redactor, text: str, gone: str, kept: str) -> None:
    clean = redact(text)
    assert gone not in clean and kept in clean, clean


def test_ordinary_text_is_left_alone(redact: Redactor) -> None:
    for text in (
        "ns/gen: Succeeded (Succeeded): stored 1 output",
        "prediction abc123 (attempt 1) started",  # "abc" is configured but too short to redact literally
        "output https://replicate.delivery/…/out.png: HTTP 404; the file has expired or was removed",
        "Replicate rejected the API token (HTTP 401: Unauthenticated); check REPLICATE_API_TOKEN",
    ):
        assert redact(text) == text


def test_scrub_copies_containers(redact: Redactor) -> None:
    ref = {"name": "gen", "note": [TOKEN, ("x", SECRET_KEY)], "n": 1}
    clean = redact.scrub(ref)
    assert clean == {"name": "gen", "note": [REDACTED, ("x", REDACTED)], "n": 1}
    assert ref["note"] == [TOKEN, ("x", SECRET_KEY)]  # the caller's object is untouched


def json_handler(stream: list[str], redact: Redactor) -> logging.Handler:
    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.append(self.format(record))

    handler = ListHandler()
    handler.setFormatter(kopf._core.actions.loggers.ObjectJsonFormatter())
    handler.addFilter(RedactingFilter(redact))
    return handler


def test_the_filter_scrubs_messages_arguments_exceptions_and_extra_fields(redact: Redactor) -> None:
    lines: list[str] = []
    logger = logging.getLogger("test.redaction")
    logger.propagate = False
    logger.addHandler(json_handler(lines, redact))
    logger.setLevel(logging.DEBUG)
    ref = {"namespace": "ns", "name": "gen", "uid": "u-1", "leak": TOKEN}
    try:
        logger.info("uploading to %s with %s", PRESIGNED, SECRET_KEY, extra={"k8s_ref": ref, "prediction_id": "p1"})
        try:
            raise RuntimeError(f"boom: Authorization: Bearer {TOKEN}")
        except RuntimeError:
            logger.exception("request failed for %s", "gen")
        logger.warning("done: %d%% of %d", 100, 5)
        logger.info("bad format %s %s", "only one")  # a broken call is still printed, and redacted
    finally:
        logger.handlers.clear()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    text = "\n".join(lines)
    for secret in (TOKEN, SECRET_KEY, SIGNATURE):
        assert secret not in text
    assert records[0]["object"] == {"namespace": "ns", "name": "gen", "uid": "u-1", "leak": REDACTED}
    assert records[0]["prediction_id"] == "p1" and "X-Amz-Signature=[REDACTED]" in records[0]["message"]
    assert "RuntimeError: boom" in records[1]["exc_info"] and "Traceback" in records[1]["exc_info"]
    assert records[2]["message"] == "done: 100% of 5"
    assert "bad format" in records[3]["message"]
    assert ref["leak"] == TOKEN  # the caller's dict is not mutated


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook
    levels = {name: logging.getLogger(name).level for name in ("kopf.objects", "httpx", "botocore")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.excepthook, threading.excepthook = hooks
        logging.captureWarnings(False)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)


def test_the_operator_logs_json_lines_only(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format="json", level="debug", secrets=[TOKEN, SECRET_KEY])
    log = logging.getLogger("mediagen.test")
    log.debug("debug with %s", PRESIGNED)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"a library warns about {TOKEN}", UserWarning, stacklevel=1)
    thread = threading.Thread(target=lambda: (_ for _ in ()).throw(ValueError(f"thread died with {SECRET_KEY}")))
    thread.start()
    thread.join()
    sys.excepthook(KeyError, KeyError("fatal"), None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert len(records) == 4, lines
    for secret in (TOKEN, SECRET_KEY, SIGNATURE):
        assert secret not in err
    assert [r["severity"] for r in records] == ["debug", "warn", "error", "fatal"]
    assert logging.getLogger("httpx").level == logging.WARNING  # its debug lines would carry URLs
    assert logging.getLogger("kopf.objects").level == logging.WARNING


def test_text_format_for_dev_is_redacted_too(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format="text", level="INFO", secrets=[TOKEN])
    logging.getLogger("mediagen.test").info("token %s and %s", TOKEN, PRESIGNED)
    err = capsys.readouterr().err
    assert "mediagen.test" in err and "[INFO" in err and TOKEN not in err and SIGNATURE not in err
    assert not err.lstrip().startswith("{")
