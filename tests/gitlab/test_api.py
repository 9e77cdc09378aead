"""The REST API v4 through python-gitlab (and raw HTTP where the shape itself is the point)."""

from __future__ import annotations

import gitlab
import pytest
import requests

from .conftest import RunningGitLab


def test_auth_headers_and_errors(gitlab_server: RunningGitLab) -> None:
    api = gitlab_server.url + "/api/v4"
    for headers in ({"PRIVATE-TOKEN": gitlab_server.token}, {"Authorization": f"Bearer {gitlab_server.token}"}):
        assert requests.get(api + "/user", headers=headers, timeout=10).json()["username"] == "root"
    bad = requests.get(api + "/user", headers={"PRIVATE-TOKEN": "glpat-wrong"}, timeout=10)
    assert (bad.status_code, bad.json()) == (401, {"message": "401 Unauthorized"})
    assert requests.get(api + "/version", timeout=10).status_code == 401
    hidden = requests.get(api + "/projects/shop%2Fshop", timeout=10)  # private: anonymous sees nothing
    assert (hidden.status_code, hidden.json()) == (404, {"message": "404 Project Not Found"})
    with pytest.raises(gitlab.GitlabAuthenticationError):
        gitlab_server.client("glpat-nope").auth()
    basic = requests.get(api + "/user", auth=("root", gitlab_server.token), timeout=10)  # the API takes no Basic
    assert (basic.status_code, basic.json()) == (401, {"message": "401 Unauthorized"})
    assert requests.get(api + "/user", params={"private_token": gitlab_server.token}, timeout=10).ok


def test_projects_by_id_and_encoded_path(gitlab_server: RunningGitLab) -> None:
    gl = gitlab_server.client()
    by_path = gl.projects.get("shop/shop")  # python-gitlab sends shop%2Fshop
    assert gl.projects.get(by_path.id).path_with_namespace == "shop/shop"
    assert by_path.http_url_to_repo == f"{gitlab_server.url}/shop/shop.git"
    raw = requests.get(f"{gitlab_server.url}/api/v4/projects/shop%2Fshop",
                       headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert raw.json()["id"] == by_path.id
    with pytest.raises(gitlab.GitlabGetError) as err:
        gl.projects.get("shop/missing")
    assert err.value.response_code == 404 and "404 Project Not Found" in str(err.value)
    created = gl.projects.create({"name": "demo-api"})
    with pytest.raises(gitlab.GitlabCreateError) as dup:
        gl.projects.create({"name": "demo-api"})
    assert dup.value.response_code == 400
    body = requests.post(f"{gitlab_server.url}/api/v4/projects", json={"name": "demo-api"},
                         headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10).json()
    assert body["message"]["name"] == ["has already been taken"]
    created.delete()


def test_files_commits_and_branches(gitlab_server: RunningGitLab) -> None:
    project = gitlab_server.client().projects.create({"name": "files-demo", "initialize_with_readme": True})
    f = project.files.get("README.md", ref="main")
    assert f.decode() == b"# files-demo\n"
    project.files.create({"file_path": "app/main.py", "branch": "main", "content": "print(1)\n",
                          "commit_message": "add main"})
    project.commits.create({"branch": "main", "commit_message": "two actions", "actions": [
        {"action": "update", "file_path": "app/main.py", "content": "print(2)\n"},
        {"action": "create", "file_path": "docs/a.md", "content": "a"}]})
    assert [c.title for c in project.commits.list()] == ["two actions", "add main", "Initial commit"]
    assert project.files.raw("app/main.py", ref="main") == b"print(2)\n"
    branch = project.branches.create({"branch": "feature/x", "ref": "main"})
    assert project.branches.get("feature/x").commit["id"] == branch.commit["id"]
    main = project.branches.get("main")
    assert main.protected and main.default
    tree = {e["path"] for e in project.repository_tree(recursive=True, get_all=True)}
    assert {"README.md", "app", "app/main.py", "docs/a.md"} <= tree
    with pytest.raises(gitlab.GitlabGetError):
        project.files.get("nope.txt", ref="main")


def test_users_and_tokens(gitlab_server: RunningGitLab) -> None:
    gl = gitlab_server.client()
    user = gl.users.create({"username": "alice", "name": "Alice", "email": "alice@example.com",
                            "password": "alice-password"})
    token = user.personal_access_tokens.create({"name": "ci", "scopes": ["read_api"]})
    alice = gitlab_server.client(token.token)
    alice.auth()
    assert alice.user.username == "alice"
    with pytest.raises(gitlab.GitlabGetError) as hidden:  # private, and alice is no member: as if it did not exist
        alice.projects.get("shop/shop")
    assert hidden.value.response_code == 404 and "404 Project Not Found" in str(hidden.value)
    with pytest.raises(gitlab.GitlabCreateError) as err:  # read_api cannot write
        alice.projects.create({"name": "nope"})
    assert err.value.response_code == 403
    with pytest.raises(gitlab.GitlabCreateError) as taken:
        gl.users.create({"username": "alice", "name": "A", "email": "other@example.com", "password": "passw0rd!"})
    assert taken.value.response_code == 409
    # the token information API (administrators): what a token value is, scopes included, revoked or not
    found = gl.http_post("/admin/token", post_data={"token": token.token})
    assert (found["name"], found["scopes"], found["user_id"], found["active"]) == ("ci", ["read_api"], user.id, True)
    with pytest.raises(gitlab.GitlabHttpError) as refused:
        alice.http_post("/admin/token", post_data={"token": token.token})
    assert refused.value.response_code == 403
    with pytest.raises(gitlab.GitlabHttpError) as unknown:
        gl.http_post("/admin/token", post_data={"token": "glpat-not-a-token"})
    assert unknown.value.response_code == 404
    gl.personal_access_tokens.delete(token.id)
    with pytest.raises(gitlab.GitlabAuthenticationError):
        gitlab_server.client(token.token).auth()
    assert gl.http_post("/admin/token", post_data={"token": token.token})["revoked"] is True


def test_pagination_as_gitlab(gitlab_server: RunningGitLab) -> None:
    gl = gitlab_server.client()
    project = gl.projects.create({"name": "many-branches", "initialize_with_readme": True})
    for i in range(25):
        project.branches.create({"branch": f"b{i:02d}", "ref": "main"})
    r = requests.get(f"{gitlab_server.url}/api/v4/projects/{project.id}/repository/branches",
                     headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert len(r.json()) == 20 and r.headers["X-Total"] == "26" and r.headers["X-Total-Pages"] == "2"
    assert r.headers["X-Next-Page"] == "2" and 'rel="next"' in r.headers["Link"]
    assert len(project.branches.list(get_all=True)) == 26
    assert len(project.branches.list(per_page=100)) == 26
    assert len(project.branches.list(per_page=500)) == 26  # capped at 100


def test_ci_lint_gives_the_planners_answer(gitlab_server: RunningGitLab) -> None:
    project = gitlab_server.client().projects.get("shop/shop")
    good = project.ci_lint.create({"content": "test:\n  script: [echo hi]\n", "include_jobs": True})
    assert good.valid and [j["name"] for j in good.jobs] == ["test"]
    bad = project.ci_lint.create({"content": "test:\n  script: [echo hi]\n  when: sometimes\n"})
    assert not bad.valid and bad.errors


def test_instance_ci_variables_admin_only_and_in_every_job(gitlab_server: RunningGitLab) -> None:
    gl = gitlab_server.client()
    registry = gl.variables.create({"key": "LAB_REGISTRY", "value": "registry.example:5000"})
    assert registry.asdict() == {"key": "LAB_REGISTRY", "variable_type": "env_var", "value": "registry.example:5000",
                                 "protected": False, "masked": False, "raw": False, "description": None}
    gl.variables.create({"key": "ONLY_PROTECTED", "value": "yes", "protected": True})
    gl.variables.create({"key": "TAG", "value": "from-instance"})  # above the .gitlab-ci.yml's variables
    with pytest.raises(gitlab.GitlabCreateError) as dup:
        gl.variables.create({"key": "LAB_REGISTRY", "value": "x"})
    assert dup.value.response_code == 400 and "(LAB_REGISTRY) has already been taken" in str(dup.value)
    bad = requests.post(f"{gitlab_server.url}/api/v4/admin/ci/variables", json={"key": "NO-DASH", "value": "1"},
                        headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert (bad.status_code, bad.json()) == (400, {"message": {"key": ["can contain only letters, digits and '_'."]}})
    masked = requests.post(f"{gitlab_server.url}/api/v4/admin/ci/variables",
                           json={"key": "SHORT", "value": "abc", "masked": True},
                           headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert (masked.status_code, masked.json()) == (400, {"message": {"value": ["is invalid"]}})
    file_type = requests.post(f"{gitlab_server.url}/api/v4/admin/ci/variables",
                              json={"key": "KUBE_FILE", "value": "x", "variable_type": "file"},
                              headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert file_type.status_code == 501 and "not supported by the labkit simulator" in file_type.json()["message"]
    missing = requests.get(f"{gitlab_server.url}/api/v4/admin/ci/variables/NOPE",
                           headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"message": "404 Variable Not Found"})
    user = gl.users.create({"username": "bob", "name": "Bob", "email": "bob@example.com", "password": "bob-password"})
    bob = gitlab_server.client(user.personal_access_tokens.create({"name": "t", "scopes": ["api"]}).token)
    with pytest.raises(gitlab.GitlabListError) as forbidden:
        bob.variables.list()
    assert forbidden.value.response_code == 403
    assert requests.get(f"{gitlab_server.url}/api/v4/admin/ci/variables", timeout=10).status_code == 401
    updated = gl.variables.get("LAB_REGISTRY")
    updated.value = "registry.lab:5000"
    updated.save()
    assert gl.variables.get("LAB_REGISTRY").value == "registry.lab:5000"
    # a pipeline on the default (protected) branch and one on a feature branch: what each job printed
    project = gl.projects.create({"name": "instance-vars", "initialize_with_readme": True})
    ci = ("variables:\n  TAG: from-yaml\nshow:\n  script:\n"
          "    - echo \"reg=$LAB_REGISTRY tag=$TAG prot=${ONLY_PROTECTED:-none} server=$CI_SERVER_NAME\"\n")
    project.files.create({"file_path": ".gitlab-ci.yml", "branch": "main", "content": ci,
                          "commit_message": "ci"})
    project.branches.create({"branch": "feature", "ref": "main"})
    traces = {}
    for ref in ("main", "feature"):
        pipeline = project.pipelines.create({"ref": ref, "variables": [{"key": "TAG", "value": "from-api"}]}) \
            if ref == "feature" else project.pipelines.create({"ref": ref})
        gitlab_server.component.services.pipelines.wait(project.id, pipeline.id, timeout=120)
        job = project.jobs.get(pipeline.jobs.list()[0].id)
        traces[ref] = job.trace().decode()
    assert "reg=registry.lab:5000 tag=from-instance prot=yes server=GitLab" in traces["main"]
    # the pipeline's own variables win over the instance's; protected ones stay on protected branches
    assert "reg=registry.lab:5000 tag=from-api prot=none server=GitLab" in traces["feature"]
    for key in ("LAB_REGISTRY", "ONLY_PROTECTED", "TAG"):
        gl.variables.delete(key)
    left = {v.key for v in gl.variables.list(get_all=True)}
    assert not left & {"LAB_REGISTRY", "ONLY_PROTECTED", "TAG"}  # the lab's own (MANIFESTS_*, HARBOR_*) stay
    project.delete()
