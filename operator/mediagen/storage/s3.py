"""The S3/R2 object store: boto3 configured the way R2 needs (docs/r2.md).

One client per process, shared by threads (boto3 clients are thread-safe). Every method blocks; the operator
calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mediagen.storage.base import ObjectURL, StorageError, StoredObject
from mediagen.storage.disposition import content_disposition
from mediagen.storage.errors import client_error_details, storage_errors, to_storage_error
from mediagen.storage.keys import DEFAULT_CONTENT_TYPE
from mediagen.storage.streaming import UploadCanceled, buffered_reader

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
"""Multipart threshold and the smallest part size; parts are all equal but the last (R2 requires it)."""
MAX_PARTS_TARGET = 9000
"""Known sizes get parts large enough to stay under this count (S3 allows 10,000)."""
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
"""R2 (and S3) reject presigned URLs valid longer than 7 days; boto3 signs them anyway."""
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
SHA256_METADATA_KEY = "sha256"

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_JURISDICTIONS = frozenset({"eu", "fedramp"})


def r2_endpoint(account_id: str, jurisdiction: str | None = None) -> str:
    """The S3 API endpoint of an R2 account, e.g. ``https://<id>.eu.r2.cloudflarestorage.com``.

    A jurisdiction endpoint reaches only that jurisdiction's buckets."""
    if not _ACCOUNT_ID.match(account_id):
        raise ValueError("R2 account id must be alphanumeric")
    if jurisdiction is None:
        return f"https://{account_id}.r2.cloudflarestorage.com"
    if jurisdiction not in _JURISDICTIONS:
        raise ValueError(f"unknown R2 jurisdiction {jurisdiction!r}; expected one of {sorted(_JURISDICTIONS)}")
    return f"https://{account_id}.{jurisdiction}.r2.cloudflarestorage.com"


def r2_client_config(
    *,
    max_pool_connections: int = 16,
    connect_timeout: float = 10,
    read_timeout: float = 120,
    max_retries: int = 5,
) -> Config:
    """The botocore ``Config`` R2 needs: s3v4, path addressing, and no automatic checksums.

    boto3 >= 1.36 otherwise adds CRC32 checksums and aws-chunked trailers that R2 rejects (docs/r2.md#checksums).
    ``max_retries`` counts retries after the first attempt (what botocore's ``retries["max_attempts"]``
    means), with standard-mode backoff: R2 answers 5xx under load."""
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": max_retries},
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="mediagen",
    )


def make_s3_client(
    endpoint_url: str,
    access_key_id: str,
    secret_access_key: str,
    region: str = "auto",
    *,
    max_pool_connections: int = 16,
    connect_timeout: float = 10,
    read_timeout: float = 120,
    max_retries: int = 5,
) -> S3Client:
    """An S3 client for R2 (or any S3-compatible endpoint), configured by :func:`r2_client_config`.

    ``max_pool_connections`` should be at least concurrent uploads times the store's ``max_concurrency``."""
    # A private session: the default one is global, lazily built and not thread-safe.
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=r2_client_config(
            max_pool_connections=max_pool_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_retries=max_retries,
        ),
    )


def part_size_for(size_hint: int | None, minimum: int = PART_SIZE) -> int:
    """Part size for an object of ``size_hint`` bytes: ``minimum``, or larger so it fits in ~9,000 parts."""
    if size_hint is None or size_hint <= 0:
        return minimum
    needed = math.ceil(size_hint / MAX_PARTS_TARGET)
    return max(minimum, math.ceil(needed / MIB) * MIB)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _strip_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


class S3Store:
    """An :class:`~mediagen.storage.base.ObjectStore` over one bucket of an S3-compatible service.

    Objects are written with ``Content-Type``, an ``immutable`` ``Cache-Control`` (keys are deterministic
    and never reused for other content), ``Content-Disposition: attachment`` unless the type is passive media
    (:mod:`mediagen.storage.disposition`) and nothing R2 does not implement (ACLs, tagging, SSE).
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        public_base_url: str | None = None,
        presign_ttl_seconds: int = 3600,
        part_size: int = PART_SIZE,
        max_concurrency: int = 2,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        """``part_size`` is both the multipart threshold and the smallest part (≥ 5 MiB on real S3/R2).

        ``presign_ttl_seconds`` is clamped to 7 days; ``clock`` (aware UTC) dates presigned URLs' expiry."""
        if presign_ttl_seconds < 1:
            raise ValueError("presign_ttl_seconds must be at least 1")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._client = client
        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_ttl_seconds = min(presign_ttl_seconds, MAX_PRESIGN_SECONDS)
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self._clock = clock

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, public_base_url={self.public_base_url!r})"

    # -- writing -------------------------------------------------------------------------------------

    def put_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str,
        size_hint: int | None = None,
        cancel: threading.Event | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` to ``key``, overwriting it; memory stays within a few parts.

        Objects up to one part are sent with one PutObject carrying their sha256 in metadata; larger ones go
        through s3transfer's multipart upload with equal parts. Setting ``cancel`` aborts the upload and
        raises :class:`UploadCanceled`; exceptions from ``chunks`` abort it too and propagate unchanged."""
        content_type = content_type or DEFAULT_CONTENT_TYPE
        source = iter(chunks)
        if size_hint is None or size_hint <= self.part_size:
            held, complete = _prefetch(source, self.part_size, cancel)
            if complete:
                return self._put_small(key, b"".join(held), content_type)
            source = _replay(held, source)
        return self._put_multipart(key, source, content_type, size_hint, cancel)

    def _put_small(self, key: str, body: bytes, content_type: str) -> StoredObject:
        sha256 = hashlib.sha256(body).hexdigest()
        with storage_errors("PutObject", self.bucket, key):
            response = self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                Metadata={SHA256_METADATA_KEY: sha256},
                **_serving_headers(key, content_type),
            )
        return StoredObject(
            key=key,
            size_bytes=len(body),
            sha256=sha256,
            content_type=content_type,
            etag=_strip_etag(response.get("ETag")),
        )

    def _put_multipart(
        self,
        key: str,
        source: Iterator[bytes],
        content_type: str,
        size_hint: int | None,
        cancel: threading.Event | None,
    ) -> StoredObject:
        part_size = part_size_for(size_hint, self.part_size)
        config = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=self.max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )
        # s3transfer's default lets 10 read parts wait in memory per upload. With as many as there are upload
        # threads, the reader stays one part ahead and then waits: about (max_concurrency + 1) parts in memory.
        config.max_in_memory_upload_chunks = self.max_concurrency
        fileobj, raw = buffered_reader(source, cancel=cancel)
        extra = _serving_headers(key, content_type)
        with fileobj, storage_errors("multipart upload", self.bucket, key):
            self._client.upload_fileobj(fileobj, self.bucket, key, ExtraArgs=extra, Config=config)
        # A read that raised (cancel, source error) has already aborted the upload and propagated; a clean
        # return that did not drain the stream would mean a truncated object.
        if not raw.eof:
            raise StorageError(f"S3 upload of s3://{self.bucket}/{key} stopped before the end of the stream")
        stored = self.head(key)
        if stored is None or stored.size_bytes != raw.size:
            raise StorageError(
                f"S3 upload of s3://{self.bucket}/{key} sent {raw.size} bytes but the object "
                f"{'is missing' if stored is None else f'has {stored.size_bytes}'}"
            )
        return StoredObject(
            key=key, size_bytes=raw.size, sha256=raw.sha256, content_type=content_type, etag=stored.etag
        )

    # -- reading and deleting ------------------------------------------------------------------------

    def head(self, key: str) -> StoredObject | None:
        """The object at ``key`` or ``None``; ``sha256`` is ``""`` when it was uploaded in parts."""
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            # HEAD has no body, so a missing key is Code "404", never "NoSuchKey" (docs/r2.md#idempotent-uploads).
            if client_error_details(exc)[1] == 404:
                return None
            raise to_storage_error(exc, "HeadObject", self.bucket, key) from exc
        except BotoCoreError as exc:
            raise to_storage_error(exc, "HeadObject", self.bucket, key) from exc
        return StoredObject(
            key=key,
            size_bytes=int(response.get("ContentLength", 0)),
            sha256=response.get("Metadata", {}).get(SHA256_METADATA_KEY, ""),
            content_type=response.get("ContentType") or DEFAULT_CONTENT_TYPE,
            etag=_strip_etag(response.get("ETag")),
        )

    def url_for(self, key: str) -> ObjectURL:
        """``public_base_url/<quoted key>`` when configured (no expiry), else a presigned GET URL."""
        if self.public_base_url is not None:
            return ObjectURL(url=f"{self.public_base_url}/{quote(key, safe='/')}")
        # Dated before signing, so the recorded expiry is never later than the real one.
        expires_at = self._clock() + dt.timedelta(seconds=self.presign_ttl_seconds)
        with storage_errors("presign GetObject", self.bucket, key):
            url = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.presign_ttl_seconds,
            )
        return ObjectURL(url=url, expires_at=expires_at)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; returns how many were deleted.

        An empty prefix is refused: it would empty the bucket."""
        if not prefix.strip("/"):
            raise ValueError("refusing to delete with an empty prefix")
        deleted = 0
        batch_ok = True
        paginator = self._client.get_paginator("list_objects_v2")
        with storage_errors("ListObjectsV2", self.bucket, prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [obj["Key"] for obj in page.get("Contents", []) if "Key" in obj]
                if not keys:
                    continue
                if batch_ok:
                    try:
                        deleted += self._delete_batch(keys)
                        continue
                    except ClientError as exc:
                        code, status = client_error_details(exc)
                        if status != 501 and code != "NotImplemented":
                            raise
                        # DeleteObjects needs a body checksum; should the endpoint refuse the one botocore
                        # sends, fall back to one DELETE per key (no body, no checksum).
                        batch_ok = False
                for key in keys:
                    self._client.delete_object(Bucket=self.bucket, Key=key)
                    deleted += 1
        return deleted

    def _delete_batch(self, keys: list[str]) -> int:
        response = self._client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"S3 DeleteObjects in s3://{self.bucket} failed for {len(errors)} key(s), first "
                f"{first.get('Key', '?')!r}: {first.get('Code', 'error')}"
            )
        return len(keys)


def _serving_headers(key: str, content_type: str) -> dict[str, Any]:
    """The headers an object is served with, as PutObject / upload_fileobj arguments."""
    headers: dict[str, Any] = {"ContentType": content_type, "CacheControl": IMMUTABLE_CACHE_CONTROL}
    disposition = content_disposition(content_type, key)
    if disposition is not None:
        headers["ContentDisposition"] = disposition
    return headers


def _prefetch(source: Iterator[bytes], limit: int, cancel: threading.Event | None) -> tuple[deque[bytes], bool]:
    """Pull chunks until more than ``limit`` bytes are held or ``source`` ends; True when it ended."""
    held: deque[bytes] = deque()
    total = 0
    for chunk in source:
        if cancel is not None and cancel.is_set():
            raise UploadCanceled()
        if chunk:
            held.append(chunk)
            total += len(chunk)
        if total > limit:
            return held, False
    if cancel is not None and cancel.is_set():
        raise UploadCanceled()
    return held, True


def _replay(held: deque[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    # Popping (rather than iterating a list) releases each held chunk as soon as it is consumed.
    while held:
        yield held.popleft()
    yield from rest
