"""The loopback world the scenarios run in: API server, S3 behind a fault proxy, the fake Replicate, operators.

A :class:`Stack` is built either by :meth:`Stack.running` (the chaos runner: everything started here and
stopped at the end) or from parts a caller already runs (the pytest fixtures of the test suite).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kubernetes import client as k8s

from mediagen.api.types import GROUP, PLURAL, VERSION, Phase
from mediagen.kube.client import load_api_client
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.install import install_api
from mediagen_dev.fake_replicate import FAKE_TOKEN, FakeReplicate, FakeReplicateServer
from mediagen_dev.fault_proxy import FaultProxy
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

BUCKET = "mediagen-chaos"
STARTED = "mediagen operator started"
TERMINAL = frozenset(phase.value for phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELED))


def manifest_for(name: str, spec: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """A MediaGeneration object."""
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MediaGeneration", "metadata": metadata, "spec": dict(spec)}


def phase_of(body: Mapping[str, Any]) -> str:
    """The phase, or ``New`` before the operator wrote one."""
    return str((body.get("status") or {}).get("phase") or "New")


@dataclass
class Stack:
    """Handles to everything on loopback, plus helpers the scenarios share."""

    plane: ControlPlane
    s3: EmbeddedS3
    proxy: FaultProxy
    fake: FakeReplicate
    workdir: Path
    bucket: str = BUCKET
    operators: list[OperatorProcess] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def running(cls, workdir: Path) -> Iterator[Stack]:
        """Start everything (a control plane of its own included); stop it all on exit."""
        workdir.mkdir(parents=True, exist_ok=True)
        fake = FakeReplicate(auto_models=True)
        with (
            ControlPlane(workdir=workdir / "controlplane") as plane,
            EmbeddedS3() as s3,
            FaultProxy(s3.endpoint_url) as proxy,
            FakeReplicateServer(fake),
        ):
            install_api(plane)
            s3.ensure_bucket(BUCKET)
            stack = cls(plane=plane, s3=s3, proxy=proxy, fake=fake, workdir=workdir)
            try:
                yield stack
            finally:
                stack.stop_operators()

    # -- clients -------------------------------------------------------------------------------------------

    @cached_property
    def api(self) -> k8s.CustomObjectsApi:
        """The admin's client for MediaGenerations."""
        return k8s.CustomObjectsApi(load_api_client(str(self.plane.kubeconfig)))

    @cached_property
    def core(self) -> k8s.CoreV1Api:
        """The admin's core client (namespaces, events)."""
        return k8s.CoreV1Api(load_api_client(str(self.plane.kubeconfig)))

    @cached_property
    def storage(self) -> S3Client:
        """A client straight to the S3 server (never through the fault proxy)."""
        return self.s3.client()

    # -- namespaces and operators --------------------------------------------------------------------------

    def namespace(self, prefix: str) -> str:
        """A fresh namespace (namespaces never finish deleting here: each run takes new ones)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.plane.create_namespace(name)
        return name

    def operator_env(
        self,
        namespace: str,
        *,
        mock: bool = False,
        via_proxy: bool = True,
        token: str = FAKE_TOKEN,
        secret_key: str | None = None,
        **extra: str,
    ) -> dict[str, str]:
        """The environment of an operator watching ``namespace`` (a name or a glob)."""
        assert self.fake.base_url is not None
        env = {
            "R2_ENDPOINT_URL": self.proxy.url if via_proxy else self.s3.endpoint_url,
            "R2_ACCESS_KEY_ID": self.s3.access_key_id,
            "R2_SECRET_ACCESS_KEY": secret_key or self.s3.secret_access_key,  # moto accepts any secret
            "R2_BUCKET": self.bucket,
            "REPLICATE_API_TOKEN": "" if mock else token,
            "REPLICATE_BASE_URL": self.fake.base_url,
            "MEDIAGEN_NAMESPACE": namespace,
            "MEDIAGEN_ALLOW_INSECURE_OUTPUTS": "true",
            "MEDIAGEN_OUTPUT_ALLOWED_HOSTS": '["127.0.0.1", "localhost"]',
            "MEDIAGEN_POLL_INITIAL_SECONDS": "0.5",
            "MEDIAGEN_POLL_MAX_SECONDS": "3",
            "MEDIAGEN_PROGRESS_INTERVAL_SECONDS": "2",
            "MEDIAGEN_DELETE_TIMEOUT_SECONDS": "15",
            "MEDIAGEN_LOG_FORMAT": "json",
        }
        env.update(extra)
        return env

    def operator(self, name: str, env: Mapping[str, str], *, kubeconfig: Path | None = None) -> OperatorProcess:
        """An operator process (not started) logging to ``<workdir>/<name>.log``; stopped by :meth:`stop_operators`.

        ``kubeconfig``: another way to the API server than the admin's (through a fault proxy, say)."""
        process = OperatorProcess(kubeconfig or self.plane.kubeconfig, env, self.workdir / f"{name}.log")
        self.operators.append(process)
        return process

    def stop_operators(self) -> None:
        """Stop every operator process this stack started (SIGTERM, then SIGKILL)."""
        for process in self.operators:
            with contextlib.suppress(Exception):
                process.stop(timeout=10)

    # -- MediaGenerations ----------------------------------------------------------------------------------

    def create(self, namespace: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Create MediaGenerations ``(name, spec)``; returns the names."""
        names = []
        for name, spec in items:
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest_for(name, spec))
            names.append(name)
        return names

    def generations(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every MediaGeneration in ``namespace`` by name."""
        listing = cast("dict[str, Any]", self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
        return {item["metadata"]["name"]: item for item in listing["items"]}

    def phases(self, namespace: str) -> dict[str, int]:
        """How many MediaGenerations of ``namespace`` are in each phase."""
        counts: dict[str, int] = {}
        for body in self.generations(namespace).values():
            counts[phase_of(body)] = counts.get(phase_of(body), 0) + 1
        return counts

    def wait_terminal(
        self, namespace: str, names: Iterable[str], timeout: float, *, poll: float = 1.0
    ) -> dict[str, dict[str, Any]]:
        """Wait until each of ``names`` has a final phase (or the timeout passes); returns the last bodies."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            try:
                bodies = {n: b for n, b in self.generations(namespace).items() if n in wanted}
            except Exception:  # the API server may be restarting under a scenario: keep asking
                bodies = {}
            else:
                if len(bodies) == len(wanted) and all(phase_of(b) in TERMINAL for b in bodies.values()):
                    return bodies
            if time.monotonic() >= deadline:
                return bodies
            time.sleep(poll)

    def delete_all(self, namespace: str) -> None:
        """Ask the API server to delete every MediaGeneration in ``namespace``."""
        self.api.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)

    def events(self, namespace: str) -> list[k8s.CoreV1Event]:
        """Every Event in ``namespace``."""
        return list(self.core.list_namespaced_event(namespace).items)
