"""The real parts the benchmarks run against, started once per run.

A local etcd + kube-apiserver with an audit log (:class:`~mediagen_dev.controlplane.ControlPlane`), the CRD and the
input admission policy installed; moto's S3 server in a child process (:class:`~.s3server.ChildS3`); and, per
benchmark, the operator as its own process (:class:`~mediagen_dev.operator_process.OperatorProcess`) watching
one namespace, with production defaults unless a benchmark says otherwise.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from kubernetes import client as k8s

from mediagen.kube.client import load_api_client
from mediagen_dev.bench.s3server import ChildS3
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.install import install_api
from mediagen_dev.fake_replicate import FAKE_TOKEN
from mediagen_dev.operator_process import OperatorProcess

BUCKET = "mediagen-bench"
STARTED = "mediagen operator started"
"""The operator's log line once its handlers are registered and its runtime is built."""


class Stack:
    """Control plane, S3 and a scratch directory; operators and namespaces on demand. A context manager.

    ``plane`` reuses a running control plane (it must have been started with ``audit=True``), as the smoke
    test does with the test session's; otherwise one is started and stopped here."""

    def __init__(self, *, plane: ControlPlane | None = None, keep_workdir: bool = False) -> None:
        self._given_plane = plane
        self._plane: ControlPlane | None = plane
        self._keep = keep_workdir
        self.s3 = ChildS3()
        self.workdir = Path(tempfile.mkdtemp(prefix="mediagen-bench-"))
        self._api_client: k8s.ApiClient | None = None

    @property
    def plane(self) -> ControlPlane:
        """The control plane."""
        if self._plane is None:
            raise RuntimeError("the stack has not been started")
        return self._plane

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        """The benchmark's own client for MediaGenerations (user agent ``mediagen-bench``)."""
        if self._api_client is None:
            self._api_client = load_api_client(str(self.plane.kubeconfig))
            self._api_client.user_agent = "mediagen-bench"
        return k8s.CustomObjectsApi(self._api_client)

    def start(self) -> Self:
        """Start what is not running yet and install the API."""
        if self._plane is None:
            self._plane = ControlPlane(audit=True).start()
        install_api(self.plane)
        self.s3.start()
        self.s3.ensure_bucket(BUCKET)
        return self

    def stop(self) -> None:
        """Stop what this stack started and remove its scratch directory."""
        if self._api_client is not None:
            self._api_client.close()  # type: ignore[no-untyped-call]
            self._api_client = None
        self.s3.stop()
        if self._given_plane is None and self._plane is not None:
            self._plane.stop()
            self._plane = None
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def namespace(self, prefix: str) -> str:
        """A new namespace for one benchmark (namespaces are never deleted: there is no namespace controller)."""
        name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
        self.plane.create_namespace(name)
        return name

    def operator_env(self, namespace: str, replicate_url: str, **overrides: str) -> dict[str, str]:
        """The operator's environment: production defaults, except storage, the fake Replicate and loopback
        outputs; ``overrides`` are more ``MEDIAGEN_*`` variables."""
        return {
            "REPLICATE_API_TOKEN": FAKE_TOKEN,
            "REPLICATE_BASE_URL": replicate_url,
            "R2_ENDPOINT_URL": self.s3.endpoint_url,
            "R2_ACCESS_KEY_ID": self.s3.access_key_id,
            "R2_SECRET_ACCESS_KEY": self.s3.secret_access_key,
            "R2_BUCKET": BUCKET,
            "MEDIAGEN_ALLOW_INSECURE_OUTPUTS": "true",
            "MEDIAGEN_OUTPUT_ALLOWED_HOSTS": '["127.0.0.1"]',
            "MEDIAGEN_NAMESPACE": namespace,
            "MEDIAGEN_LOG_FORMAT": "json",
            **overrides,
        }

    @contextlib.contextmanager
    def operator(
        self,
        namespace: str,
        replicate_url: str,
        label: str,
        env: Mapping[str, str] | None = None,
    ) -> Iterator[OperatorProcess]:
        """Run an operator process for ``namespace`` until the block ends (SIGTERM, then SIGKILL)."""
        full_env = self.operator_env(namespace, replicate_url, **dict(env or {}))
        log = self.workdir / f"operator-{label}.log"
        with OperatorProcess(self.plane.kubeconfig, full_env, log) as operator:
            operator.wait_for_log(STARTED, timeout=60)
            yield operator
