"""git smart HTTP against the real clients: the system ``git`` and dulwich's HTTP client."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from dulwich import porcelain

from .conftest import RunningGitLab

IDENT = ["-c", "user.name=Attendee", "-c", "user.email=attendee@example.com", "-c", "init.defaultBranch=main"]


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd or "/tmp")}
    return subprocess.run(["git", *IDENT, *args], cwd=cwd, capture_output=True, text=True, check=check, env=env,
                          timeout=60)


def test_clone_commit_push_with_git(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    work = tmp_path / "shop"
    git("clone", "-q", gitlab_server.clone_url("shop/shop"), str(work))
    assert (work / ".gitlab-ci.yml").is_file() and (work / "catalog" / "Dockerfile").is_file()
    (work / "NOTES.md").write_text("hello\n")
    git("add", "NOTES.md", cwd=work)
    git("commit", "-qm", "notes", cwd=work)
    pushed = git("push", "origin", "main", cwd=work)
    assert "main -> main" in pushed.stderr
    head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    project = gitlab_server.client().projects.get("shop/shop")
    assert project.branches.get("main").commit["id"] == head
    assert project.files.raw("NOTES.md", ref="main") == b"hello\n"


def test_protected_default_branch_refuses_a_force_push_with_gitlabs_message(gitlab_server: RunningGitLab,
                                                                           tmp_path: Path) -> None:
    work = tmp_path / "shop"
    git("clone", "-q", gitlab_server.clone_url("shop/shop"), str(work))
    git("commit", "-q", "--amend", "-m", "rewritten history", cwd=work)
    refused = git("push", "-f", "origin", "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "GitLab: You are not allowed to force push code to a protected branch on this project." in refused.stderr
    assert "(pre-receive hook declined)" in refused.stderr
    deleted = git("push", "origin", ":main", cwd=work, check=False)
    assert "You can only delete protected branches using the web interface." in deleted.stderr
    # another branch may be force-pushed and deleted
    git("push", "-q", "origin", "HEAD:refs/heads/feature", cwd=work)
    git("commit", "-q", "--amend", "-m", "again", cwd=work)
    git("push", "-q", "-f", "origin", "HEAD:refs/heads/feature", cwd=work)
    git("push", "-q", "origin", ":feature", cwd=work)
    assert "feature" not in [b.name for b in gitlab_server.client().projects.get("shop/shop").branches.list()]


def test_credentials_are_needed(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    host = gitlab_server.url.removeprefix("http://")
    anonymous = git("clone", "-q", f"http://{host}/shop/shop.git", str(tmp_path / "a"), check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr  # asked for credentials
    wrong = git("clone", "-q", f"http://root:wrong@{host}/shop/shop.git", str(tmp_path / "b"), check=False)
    assert wrong.returncode != 0 and "HTTP Basic: Access denied" in wrong.stderr
    missing = git("clone", "-q", gitlab_server.clone_url("shop/nothing"), str(tmp_path / "c"), check=False)
    assert missing.returncode != 0 and "could not be found" in missing.stderr


def test_a_user_without_membership_cannot_see_or_push(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    gl = gitlab_server.client()
    dev = gl.users.create({"username": "dev1", "name": "Dev One", "email": "dev1@example.com",
                           "password": "s3cret-password"})
    token = gl.users.get(dev.id).personal_access_tokens.create({"name": "t", "scopes": ["api"]}).token
    refused = git("clone", "-q", gitlab_server.clone_url("shop/shop", "dev1", token), str(tmp_path / "x"),
                  check=False)
    assert refused.returncode != 0 and "could not be found" in refused.stderr
    own = gitlab_server.client(token).projects.create({"name": "sandbox", "initialize_with_readme": True})
    git("clone", "-q", gitlab_server.clone_url(own.path_with_namespace, "dev1", "s3cret-password"),
        str(tmp_path / "own"))
    assert (tmp_path / "own" / "README.md").read_text() == "# sandbox\n"


def test_dulwich_client_clones_and_pushes(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    url = f"{gitlab_server.url}/shop/manifests.git"
    repo = porcelain.clone(url, str(tmp_path / "m"), username="root", password=gitlab_server.token)
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert ".git" in names and any(n.endswith(".yaml") for n in names)
    (tmp_path / "m" / "extra.yaml").write_text("kind: ConfigMap\n")
    porcelain.add(repo, [str(tmp_path / "m" / "extra.yaml")])
    sha = porcelain.commit(repo, message=b"extra", author=b"A <a@example.com>", committer=b"A <a@example.com>")
    porcelain.push(repo, url, "refs/heads/main", username="root", password=gitlab_server.token)
    assert gitlab_server.client().projects.get("shop/manifests").commits.list()[0].id == sha.decode()


def test_a_push_reaches_a_webhook(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    got: list[tuple[dict[str, str], dict]] = []
    done = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()
            done.set()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        project = gitlab_server.client().projects.get("shop/manifests")
        hook = project.hooks.create({"url": f"http://127.0.0.1:{server.server_port}/hook", "token": "s3"})
        work = tmp_path / "m"
        git("clone", "-q", gitlab_server.clone_url("shop/manifests"), str(work))
        (work / "a.txt").write_text("a")
        git("add", "a.txt", cwd=work)
        git("commit", "-qm", "for the hook", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        assert done.wait(10)
        headers, event = got[0]
        assert headers["X-Gitlab-Event"] == "Push Hook" and headers["X-Gitlab-Token"] == "s3"
        assert event["object_kind"] == "push" and event["ref"] == "refs/heads/main"
        assert event["after"] == git("rev-parse", "HEAD", cwd=work).stdout.strip()
        assert event["commits"][0]["title"] == "for the hook"
        assert event["project"]["path_with_namespace"] == "shop/manifests"
        hook.tag_push_events = True
        hook.save()
        done.clear()
        git("tag", "v1", cwd=work)
        git("push", "-q", "origin", "v1", cwd=work)
        assert done.wait(10)
        headers, event = got[-1]
        assert headers["X-Gitlab-Event"] == "Tag Push Hook"
        assert (event["object_kind"], event["ref"]) == ("tag_push", "refs/tags/v1")
        assert project.pipelines.list(get_all=True) == []  # no .gitlab-ci.yml here: no pipeline, as GitLab
        hook.delete()
    finally:
        server.shutdown()


def test_a_push_creates_a_pipeline_skipped_by_skip_ci_or_ci_skip(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    project = gitlab_server.client().projects.create({"name": "ci-push", "initialize_with_readme": True})
    work = tmp_path / "p"
    git("clone", "-q", gitlab_server.clone_url(project.path_with_namespace), str(work))
    (work / ".gitlab-ci.yml").write_text("hello:\n  script: [echo hello]\n")
    git("add", ".gitlab-ci.yml", cwd=work)
    git("commit", "-qm", "ci [skip ci]", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    assert [p.status for p in project.pipelines.list(get_all=True)] == ["skipped"]  # as GitLab marks them
    (work / "a.txt").write_text("a")
    git("add", "a.txt", cwd=work)
    git("commit", "-qm", "option skip", cwd=work)
    git("push", "-q", "-o", "ci.skip", "origin", "main", cwd=work)
    assert [p.status for p in project.pipelines.list(get_all=True)] == ["skipped", "skipped"]
    git("commit", "-q", "--allow-empty", "-m", "run it", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    pipeline = project.pipelines.list(get_all=True)[0]
    assert pipeline.status != "skipped"
    git("tag", "v1.0", cwd=work)
    git("push", "-q", "origin", "v1.0", cwd=work)
    [tagged] = project.pipelines.list(ref="v1.0", get_all=True)
    assert tagged.source == "push" and project.pipelines.get(tagged.id).tag is True
    assert (pipeline.source, pipeline.ref) == ("push", "main")
    assert pipeline.sha == git("rev-parse", "HEAD", cwd=work).stdout.strip()


def test_token_scopes_decide_fetch_and_push(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    root = gitlab_server.client().users.list(username="root")[0]
    reader = root.personal_access_tokens.create({"name": "reader", "scopes": ["read_repository"]}).token
    user_only = root.personal_access_tokens.create({"name": "user", "scopes": ["read_user"]}).token
    work = tmp_path / "r"
    git("clone", "-q", gitlab_server.clone_url("shop/shop", "root", reader), str(work))
    git("commit", "-q", "--allow-empty", "-m", "read-only push", cwd=work)
    refused = git("push", "origin", "main", cwd=work, check=False)
    assert refused.returncode != 0 and "You are not allowed to push code to this project." in refused.stderr
    nothing = git("clone", "-q", gitlab_server.clone_url("shop/shop", "root", user_only), str(tmp_path / "n"),
                  check=False)
    assert nothing.returncode != 0 and "not allowed to download code" in nothing.stderr


def test_gzip_requests_and_protocol_errors(gitlab_server: RunningGitLab) -> None:
    """git gzips big upload-pack requests (``Content-Encoding: gzip``); a broken request is a 400, not a 500."""
    import gzip

    import requests

    sha = gitlab_server.client().projects.get("shop/shop").branches.get("main").commit["id"]

    def pkt(line: str) -> bytes:
        return b"%04x" % (len(line) + 4) + line.encode()

    body = pkt(f"want {sha} multi_ack_detailed side-band-64k thin-pack ofs-delta\n") + b"0000" + pkt("done\n")
    url = f"{gitlab_server.url}/shop/shop.git/git-upload-pack"
    headers = {"Content-Type": "application/x-git-upload-pack-request"}
    for data, extra in ((body, {}), (gzip.compress(body), {"Content-Encoding": "gzip"})):
        r = requests.post(url, data=data, headers={**headers, **extra}, auth=("root", gitlab_server.token),
                          timeout=10)
        assert r.status_code == 200 and b"PACK" in r.content
    bad = requests.post(url, data=pkt(f"want {sha}\n") + b"0000" + pkt("done\n"), headers=headers,
                        auth=("root", gitlab_server.token), timeout=10)
    assert bad.status_code == 400 and "Client does not support required capability" in bad.text


def test_first_push_into_an_empty_project(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    project = gitlab_server.client().projects.create({"name": "empty-one"})
    assert project.empty_repo
    cloned = git("clone", gitlab_server.clone_url(project.path_with_namespace), str(tmp_path / "e"))
    assert "empty repository" in cloned.stderr
    (tmp_path / "e" / "a.txt").write_text("a")
    git("add", "a.txt", cwd=tmp_path / "e")
    git("commit", "-qm", "first", cwd=tmp_path / "e")
    git("push", "-q", "-u", "origin", "main", cwd=tmp_path / "e")
    project = gitlab_server.client().projects.get(project.id)
    assert not project.empty_repo and project.branches.get("main").default
