"""Images from a private Harbor project: the kubelet pulls them with the pod's image pull secrets (its own, or its
service account's, copied into the pod by the ServiceAccount admission step), and anonymously it is refused."""

from __future__ import annotations

import json
from typing import Any

from labkit.lab import Lab

from .conftest import k
from .oci import push_image
from .test_pods import until

IMAGE = "localhost:5001/private-images/web:1"


def pod(name: str, secret: str | None = None) -> str:
    spec: dict[str, Any] = {"containers": [{"name": "web", "image": IMAGE, "imagePullPolicy": "Always"}]}
    if secret:
        spec["imagePullSecrets"] = [{"name": secret}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def waiting_reason(lab: Lab, ns: str, name: str) -> tuple[str, str]:
    statuses = json.loads(k(lab, "-n", ns, "get", "pod", name, "-o", "json"))["status"].get("containerStatuses") or []
    waiting = (statuses[0]["state"].get("waiting") or {}) if statuses else {}
    return waiting.get("reason", ""), waiting.get("message", "")


def test_private_images_need_the_pods_pull_secret(runtime_lab: Lab, ns: str) -> None:
    user, password = runtime_lab.registry.credentials() or ("", "")
    push_image(runtime_lab.registry.endpoint.url, "private-images/web", "1", auth=(user, password), public=False)

    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=pod("anonymous"))
    def failed(name: str) -> tuple[str, str] | None:
        reason, message = waiting_reason(runtime_lab, ns, name)
        return (reason, message) if reason in ("ErrImagePull", "ImagePullBackOff") else None

    _, message = until("the anonymous pull to fail", lambda: failed("anonymous"))
    assert "pull access denied" in message and IMAGE in message

    k(runtime_lab, "-n", ns, "create", "secret", "docker-registry", "wrong", "--docker-server=localhost:5001",
      f"--docker-username={user}", "--docker-password=not-the-password")
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=pod("wrong-password", "wrong"))
    until("the pull with a wrong password to fail", lambda: failed("wrong-password"))

    k(runtime_lab, "-n", ns, "create", "secret", "docker-registry", "harbor", "--docker-server=localhost:5001",
      f"--docker-username={user}", f"--docker-password={password}")
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=pod("with-secret", "harbor"))
    k(runtime_lab, "-n", ns, "wait", "pod/with-secret", "--for=condition=Ready", "--timeout=60s")

    # the service account's pull secrets go into every new pod that names none
    k(runtime_lab, "-n", ns, "patch", "serviceaccount", "default", "-p", '{"imagePullSecrets":[{"name":"harbor"}]}')
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=pod("via-account"))
    created = json.loads(k(runtime_lab, "-n", ns, "get", "pod", "via-account", "-o", "json"))
    assert created["spec"]["imagePullSecrets"] == [{"name": "harbor"}]
    k(runtime_lab, "-n", ns, "wait", "pod/via-account", "--for=condition=Ready", "--timeout=60s")
