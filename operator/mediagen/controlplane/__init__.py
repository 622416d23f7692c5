"""A local Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1) for tests and development.

The binaries are built from the Go tools modules in hack/tools by hack/build-controlplane.sh.
"""

from mediagen.controlplane.assets import ETCD_VERSION, K8S_VERSION, find_assets
from mediagen.controlplane.errors import ControlPlaneError
from mediagen.controlplane.kubectl import KubectlError
from mediagen.controlplane.plane import ControlPlane, Ports

__all__ = [
    "ETCD_VERSION",
    "K8S_VERSION",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "Ports",
    "find_assets",
]
