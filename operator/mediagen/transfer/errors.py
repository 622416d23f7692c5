"""Why fetching an output failed: :class:`TransferError` and the CamelCase reasons conditions and events carry."""

from __future__ import annotations

# Reasons: CamelCase words for conditions and events.
OUTPUT_EXPIRED = "OutputExpired"
OUTPUT_URL_REJECTED = "OutputURLRejected"
OUTPUT_TOO_LARGE = "OutputTooLarge"
OUTPUT_UNAUTHORIZED = "OutputUnauthorized"
DOWNLOAD_REJECTED = "DownloadRejected"
DOWNLOAD_FAILED = "DownloadFailed"
DOWNLOAD_STALLED = "DownloadStalled"
DOWNLOAD_TOO_SLOW = "DownloadTooSlow"
CANCELED = "Canceled"


class TransferError(Exception):
    """Fetching an output failed. ``transient`` says whether retrying may help; ``reason`` is a CamelCase
    word for conditions (``OutputExpired``, ``OutputURLRejected``, ``OutputTooLarge``, ``DownloadFailed``...).

    Messages name the host and file, never a query string, a token or a data URI's payload."""

    def __init__(self, message: str, transient: bool, reason: str) -> None:
        super().__init__(message)
        self.transient = transient
        self.reason = reason


def too_slow(what: str, received: int, seconds: float, minimum: float) -> TransferError:
    """The ``DownloadTooSlow`` error: a slow-drip response (transient: another try may take a better path,
    and the retry budget bounds how long it can go on)."""
    return TransferError(
        f"output {what}: only {received} bytes in {seconds:.0f}s, slower than the minimum of {minimum:g} bytes/s",
        transient=True,
        reason=DOWNLOAD_TOO_SLOW,
    )


def too_large(what: str, max_bytes: int) -> TransferError:
    """The ``OutputTooLarge`` error for ``what``."""
    return TransferError(
        f"output {what} is larger than the limit of {max_bytes} bytes", transient=False, reason=OUTPUT_TOO_LARGE
    )
