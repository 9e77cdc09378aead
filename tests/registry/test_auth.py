"""Registry auth: the Bearer challenge, the token service (anonymous pull-only, admin push), basic auth,
anonymous pulls, and the failures real clients see."""

from __future__ import annotations

import base64
import json
import re

import requests

from labkit.registry.auth import Authority

from .conftest import RunningRegistry
from .images import OCI_MANIFEST, make_image, sha256


def challenge(resp: requests.Response) -> dict[str, str]:
    value = resp.headers["WWW-Authenticate"]
    assert value.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def token(registry: RunningRegistry, scope: str, auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.get(f"{registry.url}/service/token", params={"service": "harbor-registry", "scope": scope},
                        auth=auth, timeout=5)


def test_ping_challenges_and_token_flow(registry: RunningRegistry) -> None:
    url = registry.url
    ping = requests.get(f"{url}/v2/", timeout=5)
    assert ping.status_code == 401 and ping.json()["errors"][0]["code"] == "UNAUTHORIZED"
    params = challenge(ping)
    assert params == {"realm": f"{url}/service/token", "service": "harbor-registry"}
    anon = token(registry, "repository:t/auth:pull,push")
    assert anon.status_code == 200
    body = anon.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 1800 and body["issued_at"].endswith("Z")
    assert claims(body["token"])["access"] == [{"type": "repository", "name": "t/auth", "actions": ["pull"]}]
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert requests.get(f"{url}/v2/", headers=bearer, timeout=5).status_code == 200
    refused = requests.post(f"{url}/v2/t/auth/blobs/uploads/", headers=bearer, timeout=5)
    assert refused.status_code == 401
    assert challenge(refused) == {"realm": f"{url}/service/token", "service": "harbor-registry",
                                  "scope": "repository:t/auth:pull,push", "error": "insufficient_scope"}
    admin = token(registry, "repository:t/auth:pull,push", auth=registry.auth).json()["token"]
    assert claims(admin)["sub"] == "admin"
    assert claims(admin)["access"] == [{"type": "repository", "name": "t/auth", "actions": ["pull", "push"]}]
    data = b"pushed with a bearer token"
    pushed = requests.post(f"{url}/v2/t/auth/blobs/uploads/?digest={sha256(data)}", data=data, timeout=5,
                           headers={"Authorization": f"Bearer {admin}"})
    assert pushed.status_code == 201
    other_repo = requests.post(f"{url}/v2/t/elsewhere/blobs/uploads/", timeout=5,
                               headers={"Authorization": f"Bearer {admin}"})
    assert other_repo.status_code == 401 and challenge(other_repo)["error"] == "insufficient_scope"


def test_push_needs_credentials_pull_is_anonymous(registry: RunningRegistry) -> None:
    url = registry.url
    nobody = requests.post(f"{url}/v2/t/pushauth/blobs/uploads/", timeout=5)
    assert nobody.status_code == 401 and nobody.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert challenge(nobody)["scope"] == "repository:t/pushauth:pull,push"
    assert nobody.json()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": "t/pushauth", "Action": "pull"},
        {"Type": "repository", "Name": "t/pushauth", "Action": "push"}]
    wrong = ("admin", "not-the-password")
    assert requests.post(f"{url}/v2/t/pushauth/blobs/uploads/", auth=wrong, timeout=5).status_code == 401
    assert requests.get(f"{url}/v2/", auth=wrong, timeout=5).status_code == 401
    bad_token = token(registry, "repository:t/pushauth:pull,push", auth=wrong)
    assert bad_token.status_code == 401 and bad_token.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert requests.get(f"{url}/v2/", auth=registry.auth, timeout=5).status_code == 200  # basic, as htpasswd
    image = make_image("anonymous pull")
    digest = registry.client().push_image("t/pushauth", "1", image.config, list(image.layers))
    got = requests.get(f"{url}/v2/t/pushauth/manifests/1", headers={"Accept": OCI_MANIFEST}, timeout=5)
    assert got.status_code == 200 and sha256(got.content) == digest == got.headers["Docker-Content-Digest"]
    assert requests.get(f"{url}/v2/t/pushauth/blobs/{sha256(image.layers[0])}", timeout=5).content \
        == image.layers[0]
    assert requests.get(f"{url}/v2/t/pushauth/tags/list", timeout=5).json()["tags"] == ["1"]
    denied = requests.delete(f"{url}/v2/t/pushauth/manifests/1", timeout=5)
    assert denied.status_code == 401 and challenge(denied)["scope"] == "repository:t/pushauth:delete"


def test_bad_tokens_and_catalog_scope(registry: RunningRegistry) -> None:
    url = registry.url
    admin = token(registry, "repository:t/tokens:pull,push", auth=registry.auth).json()["token"]
    head, _, sig = admin.split(".")
    forged_claims = claims(admin) | {"access": [{"type": "repository", "name": "t/other", "actions": ["push"]}]}
    forged_body = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    for bad in (f"{head}.{forged_body}.{sig}", "garbage",
                Authority(registry.component.harbor.policy, b"another key").issue("admin", [])["token"]):
        resp = requests.get(f"{url}/v2/", headers={"Authorization": f"Bearer {bad}"}, timeout=5)
        assert resp.status_code == 401 and challenge(resp)["error"] == "invalid_token"
    key = registry.ctx.secrets.get("registry-token-key", 32).encode()
    expired = Authority(registry.component.harbor.policy, key, ttl=-3600).issue("admin", [])["token"]
    assert requests.get(f"{url}/v2/", headers={"Authorization": f"Bearer {expired}"}, timeout=5).status_code == 401
    anonymous = requests.get(f"{url}/v2/_catalog", timeout=5)
    assert anonymous.status_code == 401 and challenge(anonymous)["scope"] == "registry:catalog:*"
    catalog_token = token(registry, "registry:catalog:*", auth=registry.auth).json()["token"]
    listed = requests.get(f"{url}/v2/_catalog", headers={"Authorization": f"Bearer {catalog_token}"}, timeout=5)
    assert listed.status_code == 200 and isinstance(listed.json()["repositories"], list)
    anon_catalog = token(registry, "registry:catalog:*").json()["token"]
    assert claims(anon_catalog)["access"] == []


def test_oauth2_password_grant(registry: RunningRegistry) -> None:
    url = registry.url
    form = {"grant_type": "password", "username": "admin", "password": registry.password,
            "service": "harbor-registry", "scope": "repository:t/oauth:pull,push", "client_id": "test"}
    ok = requests.post(f"{url}/service/token", data=form, timeout=5)
    assert ok.status_code == 200 and ok.json()["scope"] == "repository:t/oauth:pull,push"
    assert claims(ok.json()["access_token"])["sub"] == "admin"
    assert requests.post(f"{url}/service/token", data={**form, "password": "no"}, timeout=5).status_code == 401
    refresh = requests.post(f"{url}/service/token", data={**form, "grant_type": "refresh_token"}, timeout=5)
    assert refresh.status_code == 400 and refresh.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert "labkit simulator" in refresh.json()["errors"][0]["message"]
