"""Access control with the real clients: users from CertificateSigningRequests, RBAC on every request with the real
403 messages, access reviews, impersonation, TokenRequest, ClusterRole aggregation and the escalation check."""

from __future__ import annotations

import base64
import datetime
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from labkit.lab import Lab

from ..conftest import BIN, kubectl


def k(lab: Lab, *args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return kubectl(lab, *args, check=check, **kw)  # type: ignore[arg-type]


def forbidden(res: subprocess.CompletedProcess[str]) -> str:
    """The API server's message of a 403, from the way kubectl prints it."""
    assert res.returncode != 0, res.stdout
    message = re.sub(r"^(Error from server \(Forbidden\)|error: failed to create \S+|error: unable to upgrade "
                     r"connection): ", "", res.stderr.strip())
    assert " is forbidden: " in message or message.startswith("forbidden: "), res.stderr
    return message


def wait_for(check: object, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def user_kubeconfig(lab: Lab, folder: Path, name: str, cert_pem: bytes, key_pem: bytes) -> Path:
    """A kubeconfig for the lab's cluster that authenticates with a client certificate."""
    admin = yaml.safe_load(Path(lab.kubeconfig).read_text())
    cfg = {"apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"], "current-context": name,
           "contexts": [{"name": name, "context": {"cluster": admin["clusters"][0]["name"], "user": name}}],
           "users": [{"name": name, "user": {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                                             "client-key-data": base64.b64encode(key_pem).decode()}}]}
    path = folder / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


def issue_user(lab: Lab, folder: Path, name: str, groups: list[str]) -> Path:
    """The documented "create a user" flow: key and CSR, a CertificateSigningRequest, approve, a kubeconfig."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject)).sign(key, hashes.SHA256())
    csr_name = f"{name}-{uuid.uuid4().hex[:6]}"
    manifest = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": csr_name},
                "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                         "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 86400,
                         "usages": ["client auth"]}}
    k(lab, "apply", "-f", "-", input=json.dumps(manifest))
    assert "approved" in k(lab, "certificate", "approve", csr_name).stdout
    cert = wait_for(lambda: k(lab, "get", "csr", csr_name, "-o", "jsonpath={.status.certificate}").stdout)
    assert cert, "the signer issued no certificate"
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return user_kubeconfig(lab, folder, name, base64.b64decode(str(cert)), key_pem)


HOLDER = {"apiVersion": "v1", "kind": "Pod",  # a pod that never runs: its node does not exist
          "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "localhost:5001/none:1"}]}}


@pytest.fixture(scope="module")
def jane(shared_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """User jane (client certificate, group devs) with the ClusterRole view bound in one namespace; another
    namespace she has nothing in. Yields her kubeconfig and the two namespaces."""
    suffix = uuid.uuid4().hex[:6]
    mine, other = f"view-{suffix}", f"other-{suffix}"
    for ns in (mine, other):
        k(shared_lab, "create", "namespace", ns)
        k(shared_lab, "create", "configmap", "settings", "-n", ns, "--from-literal=a=b")
    k(shared_lab, "apply", "-f", "-", input=json.dumps(HOLDER | {"metadata": {"name": "holder", "namespace": mine}}))
    user = f"jane-{suffix}"
    cfg = issue_user(shared_lab, tmp_path_factory.mktemp("users"), user, ["devs"])
    k(shared_lab, "create", "rolebinding", "jane-view", "--clusterrole=view", f"--user={user}", "-n", mine)
    yield cfg, mine, other
    for ns in (mine, other):
        k(shared_lab, "delete", "namespace", ns, "--wait=false")


def as_user(lab: Lab, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(cfg), *args], capture_output=True,
                          text=True, env=lab.env(), timeout=60)


def test_a_csr_issued_certificate_authenticates(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, _, _ = jane
    who = as_user(shared_lab, cfg, "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"].startswith("jane-") and info["groups"] == ["devs", "system:authenticated"]
    csrs = json.loads(k(shared_lab, "get", "csr", "-o", "json").stdout)["items"]
    mine = next(c for c in csrs if c["metadata"]["name"].startswith(info["username"]))
    assert mine["spec"]["username"] == "kubernetes-admin"  # the requester, filled in by the API server
    assert [c["type"] for c in mine["status"]["conditions"]] == ["Approved"]
    row = k(shared_lab, "get", "csr", mine["metadata"]["name"], "--no-headers").stdout.split()
    assert row[2:] == ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "24h", "Approved,Issued"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(mine["status"]["certificate"]))
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.total_seconds() == 86400  # expirationSeconds, from five minutes ago (back-dated)


def csr_manifest(name: str, usages: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, hashes.SHA256())
    return json.dumps({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                       "metadata": {"name": name},
                       "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                                "signerName": "kubernetes.io/kube-apiserver-client", "usages": usages}})


def test_csr_deny_failure_and_columns(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, _, _ = jane
    tag = uuid.uuid4().hex[:6]
    denied, failing = f"denied-{tag}", f"failing-{tag}"
    k(shared_lab, "create", "-f", "-", input=csr_manifest(denied, ["client auth"]))
    k(shared_lab, "create", "-f", "-", input=csr_manifest(failing, ["client auth", "server auth"]))
    assert forbidden(as_user(shared_lab, cfg, "certificate", "approve", denied)).startswith(
        f'certificatesigningrequests.certificates.k8s.io "{denied}" is forbidden: User "')  # view cannot
    approver = f"approver-{tag}"  # may update approvals, but not approve for this signer
    k(shared_lab, "create", "clusterrole", approver, "--verb=get,list,update,patch",
      "--resource=certificatesigningrequests,certificatesigningrequests/approval,certificatesigningrequests/status")
    k(shared_lab, "create", "clusterrolebinding", approver, f"--clusterrole={approver}", f"--user={approver}")
    assert forbidden(k(shared_lab, "certificate", "deny", denied, f"--as={approver}", check=False)) == (
        f'certificatesigningrequests.certificates.k8s.io "{denied}" is forbidden: user not permitted to approve '
        'requests with signerName "kubernetes.io/kube-apiserver-client"')
    signed = k(shared_lab, "patch", "csr", denied, "--subresource=status", "--type=merge", f"--as={approver}",
               "-p", json.dumps({"status": {"certificate": base64.b64encode(b"x").decode()}}), check=False)
    assert forbidden(signed) == (
        f'certificatesigningrequests.certificates.k8s.io "{denied}" is forbidden: user not permitted to sign '
        'requests with signerName "kubernetes.io/kube-apiserver-client"')
    assert "denied" in k(shared_lab, "certificate", "deny", denied).stdout
    k(shared_lab, "certificate", "approve", failing)

    def condition(name: str) -> str:
        return k(shared_lab, "get", "csr", name, "--no-headers", "-o", "custom-columns=C:.status.conditions[*].type"
                 ).stdout.strip()
    assert wait_for(lambda: condition(failing) == "Approved,Failed")
    row = k(shared_lab, "get", "csr", failing, denied, "--no-headers").stdout.splitlines()
    assert sorted(line.split()[2:] for line in row) == [  # NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION
        ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "<none>", "Approved,Failed"],
        ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "<none>", "Denied"]]
    failed = json.loads(k(shared_lab, "get", "csr", failing, "-o", "json").stdout)
    assert failed["status"]["conditions"][1]["reason"] == "SignerValidationFailure"
    assert "certificate" not in failed["status"]
    assert "certificate" not in json.loads(k(shared_lab, "get", "csr", denied, "-o", "json").stdout)["status"]


def test_view_user_reads_in_its_namespace_only(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, mine, other = jane
    user = json.loads(as_user(shared_lab, cfg, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"][
        "username"]
    binding = k(shared_lab, "get", "rolebinding", "jane-view", "-n", mine, "-o", "wide", "--no-headers").stdout
    assert binding.split()[:2] == ["jane-view", "ClusterRole/view"] and binding.split()[3] == user
    listed = as_user(shared_lab, cfg, "get", "configmaps", "-n", mine, "-o", "name")
    assert listed.returncode == 0 and "configmap/settings" in listed.stdout, listed.stderr
    assert as_user(shared_lab, cfg, "get", "configmap", "settings", "-n", mine).returncode == 0
    assert forbidden(as_user(shared_lab, cfg, "delete", "configmap", "settings", "-n", mine)) == (
        f'configmaps "settings" is forbidden: User "{user}" cannot delete resource "configmaps" in API group "" '
        f'in the namespace "{mine}"')
    created = as_user(shared_lab, cfg, "create", "deployment", "web", "--image=x", "-n", mine)
    assert created.returncode != 0 and (
        f'deployments.apps is forbidden: User "{user}" cannot create resource "deployments" in API group "apps" '
        f'in the namespace "{mine}"') in created.stderr
    assert forbidden(as_user(shared_lab, cfg, "get", "configmaps", "-n", other)) == (
        f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" in the '
        f'namespace "{other}"')
    assert forbidden(as_user(shared_lab, cfg, "get", "nodes")) == (
        f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope')
    assert forbidden(as_user(shared_lab, cfg, "get", "secrets", "-n", mine)).startswith("secrets is forbidden")
    refused = forbidden(as_user(shared_lab, cfg, "exec", "holder", "-n", mine, "--", "true"))
    assert refused.startswith(f'pods "holder" is forbidden: User "{user}" cannot ')  # get (WebSocket) or create
    assert refused.endswith(f'resource "pods/exec" in API group "" in the namespace "{mine}"')


def test_view_user_watches_with_the_python_client(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, mine, other = jane
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(cfg)))
    names = [e["object"].metadata.name for e in watch.Watch().stream(
        api.list_namespaced_config_map, mine, timeout_seconds=1)]
    assert "settings" in names
    with pytest.raises(ApiException) as err:
        api.create_namespaced_config_map(mine, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="no")))
    assert err.value.status == 403 and json.loads(err.value.body)["reason"] == "Forbidden"
    with pytest.raises(ApiException) as err:
        api.list_namespaced_config_map(other, watch=True, timeout_seconds=1)
    assert err.value.status == 403 and "cannot watch resource \"configmaps\"" in json.loads(err.value.body)["message"]


def test_can_i_matches_what_the_server_does(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, mine, other = jane
    def can_i(*args: str) -> str:
        return as_user(shared_lab, cfg, "auth", "can-i", *args).stdout.strip()
    assert can_i("list", "pods", "-n", mine) == "yes"
    assert can_i("watch", "deployments.apps", "-n", mine) == "yes"
    assert can_i("create", "pods", "-n", mine) == "no"
    assert can_i("get", "secrets", "-n", mine) == "no"
    assert can_i("list", "pods", "-n", other) == "no"
    assert can_i("get", "/api") == "yes"  # system:discovery, bound to system:authenticated
    listing = as_user(shared_lab, cfg, "auth", "can-i", "--list", "-n", mine).stdout
    rows = dict(re.findall(r"^(\S+) +\[.*?\] +\[.*?\] +(\[.*\])$", listing, re.M))
    assert rows["pods"] == "[get list watch]" and rows["deployments.apps"] == "[get list watch]"
    assert rows["selfsubjectaccessreviews.authorization.k8s.io"] == "[create]"
    assert "secrets" not in rows
    elsewhere = as_user(shared_lab, cfg, "auth", "can-i", "--list", "-n", other).stdout
    assert "pods" not in elsewhere.split() and "[/api]" in elsewhere
    assert k(shared_lab, "auth", "can-i", "delete", "nodes").stdout.strip() == "yes"  # the admin


def test_subject_access_review_for_another_user(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, mine, _ = jane
    user = json.loads(as_user(shared_lab, cfg, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"][
        "username"]
    authz = client.AuthorizationV1Api(config.new_client_from_config(config_file=shared_lab.kubeconfig))
    review = authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, resource_attributes=client.V1ResourceAttributes(namespace=mine, verb="list", resource="pods"))))
    assert review.status.allowed is True
    assert review.status.reason == f'RBAC: allowed by RoleBinding "jane-view/{mine}" of ClusterRole "view" to ' \
                                   f'User "{user}"'
    denied = authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, resource_attributes=client.V1ResourceAttributes(namespace=mine, verb="delete", resource="pods"))))
    assert denied.status.allowed is False
    local = authz.create_namespaced_local_subject_access_review(mine, client.V1LocalSubjectAccessReview(
        metadata=client.V1ObjectMeta(namespace=mine), spec=client.V1SubjectAccessReviewSpec(
            user=user, resource_attributes=client.V1ResourceAttributes(namespace=mine, verb="get",
                                                                       resource="configmaps"))))
    assert local.status.allowed is True
    with pytest.raises(ApiException) as err:
        authz.create_namespaced_local_subject_access_review(mine, client.V1LocalSubjectAccessReview(
            metadata=client.V1ObjectMeta(namespace=mine), spec=client.V1SubjectAccessReviewSpec(
                user=user, resource_attributes=client.V1ResourceAttributes(namespace="elsewhere", verb="get",
                                                                           resource="configmaps"))))
    assert err.value.status == 422 and "must match metadata.namespace" in err.value.body
    with pytest.raises(ApiException) as err:
        authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb="get", resource="pods"))))
    assert err.value.status == 422 and "at least one of user or group must be specified" in err.value.body
    # jane herself may not ask about others
    jane_authz = client.AuthorizationV1Api(config.new_client_from_config(config_file=str(cfg)))
    with pytest.raises(ApiException) as err:
        jane_authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user="x", non_resource_attributes=client.V1NonResourceAttributes(path="/api", verb="get"))))
    assert err.value.status == 403


def test_impersonation_for_the_admin_not_for_a_view_user(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, mine, _ = jane
    user = json.loads(as_user(shared_lab, cfg, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"][
        "username"]
    who = json.loads(k(shared_lab, "auth", "whoami", "-o", "json", f"--as={user}", "--as-group=testers").stdout)
    assert who["status"]["userInfo"] == {"username": user, "groups": ["testers", "system:authenticated"]}
    assert "configmap/settings" in k(shared_lab, "get", "cm", "-n", mine, "-o", "name", f"--as={user}").stdout
    assert forbidden(k(shared_lab, "delete", "cm", "settings", "-n", mine, f"--as={user}", check=False)) == (
        f'configmaps "settings" is forbidden: User "{user}" cannot delete resource "configmaps" in API group "" '
        f'in the namespace "{mine}"')
    assert forbidden(as_user(shared_lab, cfg, "get", "cm", "-n", mine, "--as=root")) == (
        f'users "root" is forbidden: User "{user}" cannot impersonate resource "users" in API group "" at the '
        "cluster scope")
    assert forbidden(as_user(shared_lab, cfg, "get", "cm", "-n", mine, f"--as=system:serviceaccount:{mine}:x")) == (
        f'serviceaccounts "x" is forbidden: User "{user}" cannot impersonate resource "serviceaccounts" in API '
        f'group "" in the namespace "{mine}"')
    as_master = k(shared_lab, "auth", "can-i", "delete", "nodes", f"--as={user}", "--as-group=system:masters",
                  check=False)
    assert as_master.stdout.strip() == "yes"  # the groups impersonated are the ones RBAC then sees


def test_anonymous_sees_only_public_info(shared_lab: Lab) -> None:
    url = shared_lab.url("kubernetes")
    ca = str(shared_lab.paths.tls / "ca.crt")
    assert requests.get(f"{url}/version", verify=ca, timeout=5).json()["major"] == "1"
    assert requests.get(f"{url}/readyz", verify=ca, timeout=5).text == "ok"
    api = requests.get(f"{url}/api", verify=ca, timeout=5)
    assert api.status_code == 403
    assert api.json()["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


def self_signed(folder: Path, name: str) -> tuple[str, str]:
    """A client certificate and key from a CA the cluster does not know."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    crt, pem = folder / f"{name}.crt", folder / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return str(crt), str(pem)


def test_only_client_certificates_of_the_cluster_ca_authenticate(shared_lab: Lab, tmp_path: Path) -> None:
    """Refused at the TLS handshake (where the real API server answers 401): a certificate from another CA, and the
    CA's own server certificate (no clientAuth usage)."""
    url = shared_lab.url("kubernetes")
    tls = shared_lab.paths.tls
    ca = str(tls / "ca.crt")
    server_cert = (str(tls / "kube-apiserver.crt"), str(tls / "kube-apiserver.key"))
    for cert in (self_signed(tmp_path, "mallory"), server_cert):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{url}/api", verify=ca, cert=cert, timeout=5)
    assert requests.get(f"{url}/version", verify=ca, timeout=5).status_code == 200  # without one: anonymous


def test_service_account_token_bound_to_edit(shared_lab: Lab) -> None:
    ns = f"sa-{uuid.uuid4().hex[:6]}"
    k(shared_lab, "create", "namespace", ns)
    try:
        k(shared_lab, "create", "serviceaccount", "deployer", "-n", ns)
        k(shared_lab, "create", "rolebinding", "deployer-edit", "--clusterrole=edit",
          f"--serviceaccount={ns}:deployer", "-n", ns)
        token = k(shared_lab, "create", "token", "deployer", "-n", ns, "--duration=20m").stdout.strip()
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["sub"] == f"system:serviceaccount:{ns}:deployer"
        assert 1190 <= claims["exp"] - claims["iat"] <= 1200

        def as_sa(*args: str) -> subprocess.CompletedProcess[str]:
            return k(shared_lab, f"--token={token}", *args, check=False)

        who = json.loads(as_sa("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
        assert who["username"] == f"system:serviceaccount:{ns}:deployer"
        assert who["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        assert as_sa("create", "configmap", "made-by-sa", "-n", ns).returncode == 0
        assert as_sa("auth", "can-i", "create", "deployments.apps", "-n", ns).stdout.strip() == "yes"
        assert forbidden(as_sa("get", "configmaps", "-n", "default")).startswith(
            f'configmaps is forbidden: User "system:serviceaccount:{ns}:deployer" cannot list')
        # edit may not grant RBAC: no roles or bindings
        assert forbidden(as_sa("create", "rolebinding", "x", "--clusterrole=view", "--user=u", "-n", ns)).startswith(
            "rolebindings.rbac.authorization.k8s.io is forbidden")
        k(shared_lab, "delete", "serviceaccount", "deployer", "-n", ns)
        gone = as_sa("get", "configmaps", "-n", ns)
        assert gone.returncode != 0 and "Unauthorized" in gone.stderr
    finally:
        k(shared_lab, "delete", "namespace", ns, "--wait=false")


def test_token_bound_to_a_pod_lives_with_the_pod(shared_lab: Lab) -> None:
    ns = f"bound-{uuid.uuid4().hex[:6]}"
    k(shared_lab, "create", "namespace", ns)
    try:
        k(shared_lab, "create", "serviceaccount", "app", "-n", ns)
        k(shared_lab, "create", "rolebinding", "app-view", "--clusterrole=view", f"--serviceaccount={ns}:app",
          "-n", ns)
        pod = {**HOLDER, "metadata": {"name": "holder", "namespace": ns},
               "spec": {**HOLDER["spec"], "serviceAccountName": "app"}}
        k(shared_lab, "apply", "-f", "-", input=json.dumps(pod))
        token = k(shared_lab, "create", "token", "app", "-n", ns, "--bound-object-kind=Pod",
                  "--bound-object-name=holder").stdout.strip()
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["kubernetes.io"]["pod"]["name"] == "holder"
        assert k(shared_lab, f"--token={token}", "get", "pods", "-n", ns, "-o", "name").stdout.strip() == "pod/holder"
        missing = k(shared_lab, "create", "token", "app", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=absent", check=False)
        assert 'pods "absent" not found' in missing.stderr
        k(shared_lab, "delete", "pod", "holder", "-n", ns, "--grace-period=0", "--force")
        refused = wait_for(lambda: "Unauthorized" in k(shared_lab, f"--token={token}", "get", "pods", "-n", ns,
                                                       check=False).stderr)
        assert refused
    finally:
        k(shared_lab, "delete", "namespace", ns, "--wait=false")


def test_aggregation_adds_a_labelled_cluster_role_to_view(shared_lab: Lab, jane: tuple[Path, str, str]) -> None:
    cfg, mine, _ = jane
    name = f"widgets-view-{uuid.uuid4().hex[:6]}"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["public"],
                       "verbs": ["get"]}]}
    assert as_user(shared_lab, cfg, "auth", "can-i", "get", "secret/public", "-n", mine).stdout.strip() == "no"
    k(shared_lab, "apply", "-f", "-", input=json.dumps(role))
    try:
        def in_view() -> bool:
            rules = json.loads(k(shared_lab, "get", "clusterrole", "view", "-o", "json").stdout)["rules"]
            return role["rules"][0] in rules
        assert wait_for(in_view)
        edit = json.loads(k(shared_lab, "get", "clusterrole", "edit", "-o", "json").stdout)["rules"]
        assert role["rules"][0] in edit  # view is aggregated into edit, and edit into admin
        assert as_user(shared_lab, cfg, "auth", "can-i", "get", "secret/public", "-n", mine).stdout.strip() == "yes"
        assert as_user(shared_lab, cfg, "auth", "can-i", "get", "secret/private", "-n", mine).stdout.strip() == "no"
    finally:
        k(shared_lab, "delete", "clusterrole", name)
    assert wait_for(lambda: as_user(shared_lab, cfg, "auth", "can-i", "get", "secret/public", "-n",
                                    mine).stdout.strip() == "no")


def test_no_escalation_without_escalate_or_bind(shared_lab: Lab) -> None:
    ns = f"esc-{uuid.uuid4().hex[:6]}"
    k(shared_lab, "create", "namespace", ns)
    try:
        k(shared_lab, "create", "role", "role-admin", "--verb=create,get", "--resource=roles,rolebindings",
          "--verb=get,list", "-n", ns)
        k(shared_lab, "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
        k(shared_lab, "create", "rolebinding", "bob-roles", "--role=role-admin", "--user=bob", "-n", ns)
        k(shared_lab, "create", "rolebinding", "bob-pods", "--role=pod-reader", "--user=bob", "-n", ns)
        assert k(shared_lab, "create", "role", "ok", "--verb=get", "--resource=pods", "-n", ns,
                 "--as=bob").returncode == 0
        refused = forbidden(k(shared_lab, "create", "role", "more", "--verb=get,delete,deletecollection",
                              "--resource=pods,secrets", "-n", ns, "--as=bob", check=False))
        assert refused == (
            'roles.rbac.authorization.k8s.io "more" is forbidden: user "bob" (groups=["system:authenticated"]) is '
            "attempting to grant RBAC permissions not currently held:\n"
            '{APIGroups:[""], Resources:["pods"], Verbs:["delete" "deletecollection"]}\n'
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete" "deletecollection"]}')
        bind = forbidden(k(shared_lab, "create", "rolebinding", "b", "--clusterrole=edit", "--user=carol", "-n", ns,
                           "--as=bob", check=False))
        assert bind.startswith('rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "bob" '
                               '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
                               "currently held:\n")
        assert k(shared_lab, "create", "rolebinding", "c", "--role=pod-reader", "--user=carol", "-n", ns,
                 "--as=bob").returncode == 0  # bob holds every rule of pod-reader
        k(shared_lab, "create", "role", "escalator", "--verb=escalate,bind", "--resource=roles,clusterroles",
          "-n", ns)
        k(shared_lab, "create", "rolebinding", "bob-esc", "--role=escalator", "--user=bob", "-n", ns)
        assert k(shared_lab, "create", "role", "more", "--verb=delete", "--resource=secrets", "-n", ns,
                 "--as=bob").returncode == 0
        assert k(shared_lab, "create", "rolebinding", "b", "--clusterrole=edit", "--user=carol", "-n", ns,
                 "--as=bob").returncode == 0
    finally:
        k(shared_lab, "delete", "namespace", ns, "--wait=false")


def test_bootstrap_roles_are_the_real_ones(shared_lab: Lab) -> None:
    crb = json.loads(k(shared_lab, "get", "clusterrolebinding", "cluster-admin", "-o", "json").stdout)
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    assert crb["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true"
    view = json.loads(k(shared_lab, "get", "clusterrole", "view", "-o", "json").stdout)
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]} in view["rules"]
    public = json.loads(k(shared_lab, "get", "clusterrolebinding", "system:public-info-viewer", "-o", "json").stdout)
    assert [s["name"] for s in public["subjects"]] == ["system:authenticated", "system:unauthenticated"]


def test_rbac_objects_are_validated_as_the_api_server_does(shared_lab: Lab) -> None:
    ns = f"val-{uuid.uuid4().hex[:6]}"
    k(shared_lab, "create", "namespace", ns)
    try:
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "b", "namespace": ns},
                   "roleRef": {"kind": "ClusterRole", "name": "view"},  # apiGroup defaulted, as subjects' are
                   "subjects": [{"kind": "User", "name": "u"}]}
        k(shared_lab, "apply", "-f", "-", input=json.dumps(binding))
        stored = json.loads(k(shared_lab, "get", "rolebinding", "b", "-n", ns, "-o", "json").stdout)
        assert stored["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"}]
        changed = k(shared_lab, "apply", "-f", "-", check=False,
                    input=json.dumps({**binding, "roleRef": {**binding["roleRef"], "name": "edit"}}))
        assert 'The RoleBinding "b" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:' \
               '"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef' in changed.stderr
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "r", "namespace": ns},
                "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, {"apiGroups": [""], "verbs": ["get"]}]}
        refused = k(shared_lab, "apply", "-f", "-", input=json.dumps(role), check=False)
        assert 'The Role "r" is invalid: \n* rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: ' \
               "namespaced rules cannot apply to non-resource URLs\n* rules[1].resources: Required value: resource " \
               "rules must supply at least one resource" in refused.stderr
    finally:
        k(shared_lab, "delete", "namespace", ns, "--wait=false")
