"""A local Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1) for tests and development.

The binaries are built from the Go tools modules in hack/tools by hack/build-controlplane.sh.
"""

from mediagen_dev.controlplane.assets import ETCD_VERSION, K8S_VERSION, find_assets
from mediagen_dev.controlplane.errors import ControlPlaneError
from mediagen_dev.controlplane.kubectl import KubectlError
from mediagen_dev.controlplane.plane import ControlPlane, Ports

__all__ = [
    "ETCD_VERSION",
    "K8S_VERSION",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "Ports",
    "find_assets",
]
