"""The Kubernetes API as Argo CD's API server uses it: the lab's async client (``labkit.kubeclient``) and the paths
of Argo CD's own resources."""

from __future__ import annotations

from ...kubeclient.api import KubeApi, KubeError, core_path

__all__ = ["GROUP", "VERSION", "KubeApi", "KubeError", "apps_path", "core_path", "projects_path"]

GROUP = "argoproj.io"
VERSION = "v1alpha1"


def apps_path(namespace: str, name: str = "") -> str:
    """The path of the namespace's Applications (or of one)."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/applications" + (f"/{name}" if name else "")


def projects_path(namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/appprojects" + (f"/{name}" if name else "")
