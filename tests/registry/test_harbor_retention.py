"""Harbor's tag retention on the lab registry, driven with requests against ``/api/v2.0/retentions``: a policy
that keeps the latest K pushed artifacts; a dry run deletes nothing; a real run deletes the rest through
Harbor's delete path (the audit log shows each delete), spares an immutable tag, and the registry no longer
serves what was deleted."""

from __future__ import annotations

import time
from typing import Any

import requests

from labkit.images.client import RegistryClient
from labkit.registry.harbor.retention.policy import Candidate, retained, rules_for

from .conftest import RunningRegistry
from .images import OCI_MANIFEST, Image, make_image

ALL = [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}]
ALL_REPOS = {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}


def push(client: RegistryClient, repo: str, image: Image, tag: str) -> None:
    for digest, blob in image.blobs().items():
        client.push_blob(repo, blob, digest)
    client.push_manifest(repo, tag, image.manifest, OCI_MANIFEST)


def latest_k(project_id: int, k: int, pattern: str = "**") -> dict[str, Any]:
    return {"algorithm": "or", "scope": {"level": "project", "ref": project_id},
            "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
            "rules": [{"action": "retain", "template": "latestPushedK", "params": {"latestPushedK": k},
                       "tag_selectors": [{**ALL[0], "pattern": pattern}], "scope_selectors": ALL_REPOS}]}


def run(registry: RunningRegistry, policy_id: int, dry_run: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Trigger an execution and wait for it: (the execution, its tasks)."""
    base = f"{registry.api}/retentions/{policy_id}/executions"
    resp = requests.post(base, json={"dry_run": dry_run}, auth=registry.auth, timeout=10)
    assert resp.status_code == 201, resp.text
    execution_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 60
    while True:
        executions = requests.get(base, auth=registry.auth, timeout=10).json()
        (execution,) = [e for e in executions if e["id"] == execution_id]
        if execution["status"] != "Running":
            break
        assert time.monotonic() < deadline, execution
        time.sleep(0.1)
    tasks = requests.get(f"{base}/{execution_id}/tasks", auth=registry.auth, timeout=10).json()
    return execution, tasks


def tags(registry: RunningRegistry, repo: str) -> list[str]:
    return sorted(requests.get(f"{registry.url}/v2/{repo}/tags/list", auth=registry.auth, timeout=10).json()["tags"])


def test_retention_keeps_the_latest_k_and_deletes_the_rest(registry: RunningRegistry) -> None:
    registry.project("keep")
    project_id = requests.get(f"{registry.api}/projects/keep", auth=registry.auth, timeout=10).json()["project_id"]
    client = registry.client()
    images = {}
    for i in range(1, 6):  # v1 oldest ... v5 newest
        images[f"v{i}"] = make_image(f"keep-{i}")
        push(client, "keep/app", images[f"v{i}"], f"v{i}")
        time.sleep(0.02)
    push(client, "keep/other", make_image("other-1"), "old")
    time.sleep(0.02)
    push(client, "keep/other", make_image("other-2"), "new")

    resp = requests.post(f"{registry.api}/retentions", json=latest_k(project_id, 2), auth=registry.auth, timeout=10)
    assert resp.status_code == 201, resp.text
    policy_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    project = requests.get(f"{registry.api}/projects/keep", auth=registry.auth, timeout=10).json()
    assert project["metadata"]["retention_id"] == str(policy_id)
    # a project update may repeat its retention_id, not change it (Harbor's check)
    same = {"metadata": {"retention_id": str(policy_id), "auto_scan": "false"}}
    assert requests.put(f"{registry.api}/projects/keep", json=same, auth=registry.auth, timeout=10).status_code == 200
    other = requests.put(f"{registry.api}/projects/keep", json={"metadata": {"retention_id": "999"}},
                         auth=registry.auth, timeout=10)
    assert other.status_code == 400 and "retention_id" in other.json()["errors"][0]["message"]
    policy = requests.get(f"{registry.api}/retentions/{policy_id}", auth=registry.auth, timeout=10).json()
    assert policy["id"] == policy_id and policy["rules"][0]["template"] == "latestPushedK"

    # a dry run deletes nothing, but its tasks say what it would do
    execution, tasks = run(registry, policy_id, dry_run=True)
    assert execution["status"] == "Success" and execution["dry_run"] is True and execution["trigger"] == "MANUAL"
    assert {(t["repository"], t["total"], t["retained"], t["status"]) for t in tasks} == {
        ("app", 5, 2, "Success"), ("other", 2, 2, "Success")}
    assert tags(registry, "keep/app") == ["v1", "v2", "v3", "v4", "v5"]
    (app_task,) = [t for t in tasks if t["repository"] == "app"]
    log = requests.get(f"{registry.api}/retentions/{policy_id}/executions/{execution['id']}/tasks/{app_task['id']}",
                       auth=registry.auth, timeout=10)
    assert log.status_code == 200 and "Dry Run: True" in log.text
    marks = {line.split("|")[2].strip(): line.split("|")[-2].strip() for line in log.text.splitlines()
             if line.startswith("| sha256:")}
    assert marks == {"v1": "DEL", "v2": "DEL", "v3": "DEL", "v4": "RETAIN", "v5": "RETAIN"}

    # v1 made immutable: the real run spares it, deletes v2 and v3 through Harbor's delete path
    rule = {"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v1"}],
            "scope_selectors": ALL_REPOS}
    assert requests.post(f"{registry.api}/projects/keep/immutabletagrules", json=rule, auth=registry.auth,
                         timeout=10).status_code == 201
    execution, tasks = run(registry, policy_id, dry_run=False)
    assert execution["status"] == "Success" and execution["dry_run"] is False
    assert tags(registry, "keep/app") == ["v1", "v4", "v5"]
    assert tags(registry, "keep/other") == ["new", "old"]
    for gone in ("v2", "v3"):
        resp = requests.get(f"{registry.url}/v2/keep/app/manifests/{images[gone].digest}", auth=registry.auth,
                            headers={"Accept": OCI_MANIFEST}, timeout=10)
        assert resp.status_code == 404
    listed = requests.get(f"{registry.api}/projects/keep/repositories/app/artifacts", auth=registry.auth,
                          timeout=10).json()
    assert sorted(a["digest"] for a in listed) == sorted(images[t].digest for t in ("v1", "v4", "v5"))
    audit = requests.get(f"{registry.api}/audit-logs", auth=registry.auth, timeout=10,
                         params={"q": "operation=delete", "page_size": 100}).json()
    deleted = {e["resource"] for e in audit if e["username"] == "harbor-jobservice"}
    assert deleted == {f"keep/app@{images[t].digest}" for t in ("v2", "v3")}
    (app_task,) = [t for t in tasks if t["repository"] == "app"]
    assert (app_task["total"], app_task["retained"]) == (5, 3)


def test_retention_policy_validation_and_access(registry: RunningRegistry) -> None:
    registry.project("rules")
    project_id = requests.get(f"{registry.api}/projects/rules", auth=registry.auth, timeout=10).json()["project_id"]
    api = f"{registry.api}/retentions"
    assert requests.post(api, json=latest_k(project_id, 1), timeout=10).status_code == 401  # anonymous
    bad = latest_k(project_id, 1)
    bad["rules"][0]["template"] = "latestPushedForever"
    resp = requests.post(api, json=bad, auth=registry.auth, timeout=10)
    assert resp.status_code == 400 and resp.json()["errors"][0]["code"] == "BAD_REQUEST"
    five_fields = latest_k(project_id, 1)
    five_fields["trigger"]["settings"]["cron"] = "0 0 * * *"  # Harbor's cron has a seconds field first
    resp = requests.post(api, json=five_fields, auth=registry.auth, timeout=10)
    assert resp.status_code == 400 and "expected exactly 6 fields" in resp.json()["errors"][0]["message"]
    twice = latest_k(project_id, 1)
    twice["rules"].append(dict(twice["rules"][0]))
    assert requests.post(api, json=twice, auth=registry.auth, timeout=10).status_code == 409
    first = requests.post(api, json=latest_k(project_id, 1), auth=registry.auth, timeout=10)
    assert first.status_code == 201
    again = requests.post(api, json=latest_k(project_id, 3), auth=registry.auth, timeout=10)
    assert again.status_code == 400 and "already has retention policy" in again.json()["errors"][0]["message"]
    policy_id = int(first.headers["Location"].rsplit("/", 1)[1])
    assert requests.put(f"{api}/{policy_id}", json=latest_k(project_id, 3), auth=registry.auth,
                        timeout=10).status_code == 200
    assert requests.get(f"{api}/{policy_id}", auth=registry.auth, timeout=10).json()["rules"][0]["params"] == {
        "latestPushedK": 3}
    metadata = requests.get(f"{api}/metadatas", auth=registry.auth, timeout=10).json()
    assert "latestPushedK" in {t["rule_template"] for t in metadata["templates"]}
    assert requests.delete(f"{api}/{policy_id}", auth=registry.auth, timeout=10).status_code == 200
    assert requests.get(f"{api}/{policy_id}", auth=registry.auth, timeout=10).status_code == 404
    project = requests.get(f"{registry.api}/projects/rules", auth=registry.auth, timeout=10).json()
    assert "retention_id" not in project["metadata"]


def candidate(digest: str, tags: tuple[str, ...], pushed_days_ago: float, pulled_days_ago: float | None = None
              ) -> Candidate:
    now = time.time()
    pulled = now - pulled_days_ago * 86400 if pulled_days_ago is not None else 0.0
    return Candidate("p", "app", digest, tags, (), now - pushed_days_ago * 86400, pulled, now - pushed_days_ago * 86400)


def rule(template: str, value: int | None = None, pattern: str = "**", decoration: str = "matches",
         extras: str = "") -> dict[str, Any]:
    return {"template": template, "params": {template: value} if value is not None else {},
            "tag_selectors": [{"kind": "doublestar", "decoration": decoration, "pattern": pattern, "extras": extras}],
            "scope_selectors": ALL_REPOS}


def test_rule_templates_and_selectors() -> None:
    items = [candidate("a", ("v1",), 40, 1), candidate("b", ("v2", "latest"), 20, 35), candidate("c", ("dev-1",), 2),
             candidate("d", (), 1)]
    assert retained([rule("latestPushedK", 2)], items) == {"c", "d"}  # untagged taken by default
    assert retained([rule("latestPushedK", 2, extras='{"untagged": false}')], items) == {"b", "c"}
    assert retained([rule("latestPulledN", 1)], items) == {"a"}
    assert retained([rule("nDaysSinceLastPush", 30)], items) == {"b", "c", "d"}
    assert retained([rule("nDaysSinceLastPull", 30)], items) == {"a"}
    assert retained([rule("always", pattern="v*")], items) == {"a", "b", "d"}
    assert retained([rule("always", pattern="dev-*", decoration="excludes")], items) == {"a", "b"}
    assert retained([rule("always", pattern="{latest,dev-*}")], items) == {"b", "c", "d"}
    # OR: what any rule keeps; a disabled rule keeps nothing
    assert retained([rule("latestPushedK", 1, extras='{"untagged": false}'), rule("latestPulledN", 1)], items) == {
        "a", "c"}
    assert retained([{**rule("always"), "disabled": True}], items) == set()
    scoped = {**rule("always"), "scope_selectors": {"repository": [
        {"kind": "doublestar", "decoration": "repoExcludes", "pattern": "tools/**"}]}}
    assert rules_for([scoped], "app") == [scoped] and rules_for([scoped], "tools/lint") == []


def test_a_scheduled_policy_runs_on_its_cron(registry: RunningRegistry) -> None:
    registry.project("nightly")
    project_id = requests.get(f"{registry.api}/projects/nightly", auth=registry.auth, timeout=10).json()["project_id"]
    client = registry.client()
    for i in range(1, 4):
        push(client, "nightly/app", make_image(f"nightly-{i}"), f"v{i}")
        time.sleep(0.02)
    policy = latest_k(project_id, 1)
    policy["trigger"]["settings"]["cron"] = "*/2 * * * * *"  # every two seconds
    resp = requests.post(f"{registry.api}/retentions", json=policy, auth=registry.auth, timeout=10)
    assert resp.status_code == 201, resp.text
    base = f"{registry.api}/retentions/{int(resp.headers['Location'].rsplit('/', 1)[1])}/executions"
    deadline = time.monotonic() + 30
    while not [e for e in requests.get(base, auth=registry.auth, timeout=10).json() if e["status"] == "Success"]:
        assert time.monotonic() < deadline, "the schedule never ran the policy"
        time.sleep(0.2)
    execution = requests.get(base, auth=registry.auth, timeout=10).json()[-1]
    assert execution["trigger"] == "SCHEDULE" and execution["dry_run"] is False
    assert tags(registry, "nightly/app") == ["v3"]
    assert requests.delete(base.removesuffix("/executions"), auth=registry.auth, timeout=10).status_code == 200
