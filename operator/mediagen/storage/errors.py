"""Turning botocore exceptions into :class:`StorageError` with a transient/permanent verdict.

The verdict is made here, where the S3 error code is known, and nowhere downstream. Messages carry the
operation, bucket, key, S3 error code and HTTP status, plus the server's message with anything that looks like
an access key id or a long token blanked out (servers never see the secret key, only a signature, but some
echo the access key id).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from mediagen.storage.base import StorageError

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestLimitExceeded",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "ConditionalRequestConflict",
        # The multipart upload vanished under us (aborted elsewhere); a fresh upload can succeed.
        "NoSuchUpload",
    }
)
_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "Unauthorized",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "InvalidArgument",
        "InvalidRequest",
        "MalformedXML",
        "EntityTooLarge",
        "EntityTooSmall",
        "InvalidPart",
        "InvalidPartOrder",
        "KeyTooLongError",
        "MetadataTooLarge",
        "MethodNotAllowed",
        "NotImplemented",
        "PreconditionFailed",
    }
)
_PERMANENT_BOTOCORE = (NoCredentialsError, PartialCredentialsError, ParamValidationError, NoRegionError)
_SECRETISH = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}|[A-Za-z0-9+=]{32,}")
_MAX_SERVER_MESSAGE = 300


def scrub(text: str) -> str:
    """``text`` with access-key-like and long token-like runs replaced, truncated to a sane length."""
    cleaned = _SECRETISH.sub("[redacted]", text)
    if len(cleaned) > _MAX_SERVER_MESSAGE:
        cleaned = cleaned[:_MAX_SERVER_MESSAGE] + "…"
    return cleaned


def client_error_details(exc: ClientError) -> tuple[str, int]:
    """The S3 error code and HTTP status of ``exc`` (``("", 0)`` when absent)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def is_transient_client_error(code: str, status: int) -> bool:
    """Whether retrying an S3 request that failed with ``code``/``status`` may succeed."""
    if code in _TRANSIENT_CODES:
        return True
    if code in _PERMANENT_CODES:
        return False
    if status in (408, 429) or (status >= 500 and status != 501):
        return True
    # Any other status is about the request, the account or the endpoint: resending will not help. No status
    # at all means the response never arrived intact.
    return status == 0


def to_storage_error(exc: BotoCoreError | ClientError, operation: str, bucket: str, key: str) -> StorageError:
    """The :class:`StorageError` for a botocore failure of ``operation`` on ``bucket``/``key``."""
    where = f"S3 {operation} s3://{bucket}/{key}"
    if isinstance(exc, ClientError):
        code, status = client_error_details(exc)
        server_message = str(exc.response.get("Error", {}).get("Message", "") or "")
        detail = f"{code or 'error'} (HTTP {status})"
        if server_message:
            detail += f": {scrub(server_message)}"
        return StorageError(f"{where} failed: {detail}", transient=is_transient_client_error(code, status))
    transient = not isinstance(exc, _PERMANENT_BOTOCORE)
    return StorageError(f"{where} failed: {type(exc).__name__}: {scrub(str(exc))}", transient=transient)


@contextmanager
def storage_errors(operation: str, bucket: str, key: str) -> Iterator[None]:
    """Re-raise botocore exceptions raised inside the block as :class:`StorageError`; others pass through."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise to_storage_error(exc, operation, bucket, key) from exc
