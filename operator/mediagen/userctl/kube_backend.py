"""MediaGenerations through a kubeconfig: the Kubernetes API, as kubectl reaches it."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from mediagen.api.types import API_VERSION, GROUP, KIND, PLURAL, VERSION
from mediagen.kube.client import load_api_client
from mediagen.userctl.errors import BackendError, UsageError
from mediagen.userctl.snapshot import Snapshot, from_resource

GENERATE_NAME = "gen-"


def _kube_message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except (ValueError, AttributeError):
        return str(err.reason)


class KubeBackend:
    """MediaGenerations in one namespace, through a kubeconfig (``KUBECONFIG``, ``~/.kube/config``)."""

    def __init__(self, kubeconfig: str | None, namespace: str | None) -> None:
        try:
            self._api = k8s.CustomObjectsApi(load_api_client(kubeconfig))
        except (k8s_config.ConfigException, OSError) as err:
            raise UsageError(f"no usable kubeconfig ({err}); set KUBECONFIG, or use --gateway") from err
        self.namespace = namespace or _context_namespace(kubeconfig)
        self.where = f"namespace {self.namespace}"
        self.follow_flags = f" -n {self.namespace}" if namespace else ""

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = call(GROUP, VERSION, self.namespace, PLURAL, *args, **kwargs)
        except ApiException as err:
            if err.status == 404 and what != "list":
                raise BackendError(f"no MediaGeneration {what} in namespace {self.namespace}") from err
            raise BackendError(f"the Kubernetes API refused it (HTTP {err.status}): {_kube_message(err)}") from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise BackendError(f"cannot reach the Kubernetes API: {err}") from err
        return result

    def create(self, spec: dict[str, Any], name: str | None) -> Snapshot:
        """Create a MediaGeneration (``gen-xxxxx`` unless named)."""
        metadata = {"name": name} if name else {"generateName": GENERATE_NAME}
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
        return from_resource(self._call(name or "", self._api.create_namespaced_custom_object, body))

    def get(self, name: str) -> Snapshot:
        """Read one MediaGeneration."""
        return from_resource(self._call(name, self._api.get_namespaced_custom_object, name))

    def list(self) -> list[Snapshot]:
        """Every MediaGeneration in the namespace, oldest first."""
        items = self._call("list", self._api.list_namespaced_custom_object).get("items", [])
        return sorted((from_resource(item) for item in items), key=lambda s: (s.created is None, s.created, s.name))


def _context_namespace(kubeconfig: str | None) -> str:
    """The current context's namespace, as kubectl picks it (``default`` when the context names none)."""
    try:
        _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (k8s_config.ConfigException, OSError):
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")
