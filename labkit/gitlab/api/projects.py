"""Projects, branches, commits, the repository tree and files."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from dulwich.objects import Commit

from ..accounts import Caller
from ..errors import bad_request, gl_error, not_found, param_error
from ..repos import Author
from .common import caller, flag, ok, paginate, params, required, user
from .context import Services


def commit_json(c: Commit, base_url: str, project: dict[str, Any]) -> dict[str, Any]:
    """A commit as GitLab's API shows it."""
    from datetime import UTC, datetime

    def who(ident: bytes) -> tuple[str, str]:
        text = ident.decode(errors="replace")
        name, _, email = text.partition(" <")
        return name, email.rstrip(">")

    def when(t: int) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    sha = c.id.decode()
    message = c.message.decode(errors="replace")
    (an, ae), (cn, ce) = who(c.author), who(c.committer)
    return {"id": sha, "short_id": sha[:8], "created_at": when(c.commit_time),
            "parent_ids": [p.decode() for p in c.parents], "title": message.split("\n", 1)[0], "message": message,
            "author_name": an, "author_email": ae, "authored_date": when(c.author_time), "committer_name": cn,
            "committer_email": ce, "committed_date": when(c.commit_time), "trailers": {}, "extended_trailers": {},
            "web_url": f"{project['web_url']}/-/commit/{sha}"}


class ProjectRoutes:
    def __init__(self, s: Services) -> None:
        self.s = s

    def install(self, app: web.Application) -> None:
        r, P = app.router, "/api/v4/projects/{id}"
        r.add_get("/api/v4/projects", self.list)
        r.add_post("/api/v4/projects", self.create)
        r.add_get(P, self.get)
        r.add_delete(P, self.delete)
        r.add_get(P + "/job_token_scope", self.job_token_scope)
        r.add_get(P + "/job_token_scope/allowlist", self.allowlist)
        r.add_post(P + "/job_token_scope/allowlist", self.allow)
        r.add_delete(P + "/job_token_scope/allowlist/{target:\\d+}", self.disallow)
        r.add_get(P + "/repository/branches", self.branches)
        r.add_post(P + "/repository/branches", self.create_branch)
        r.add_get(P + "/repository/branches/{branch:.+}", self.branch)
        r.add_delete(P + "/repository/branches/{branch:.+}", self.delete_branch)
        r.add_get(P + "/repository/commits", self.commits)
        r.add_post(P + "/repository/commits", self.create_commit)
        r.add_get(P + "/repository/commits/{sha}", self.commit)
        r.add_get(P + "/repository/commits/{sha}/diff", self.diff)
        r.add_get(P + "/repository/tree", self.tree)
        r.add_get(P + "/repository/files/{path:.+}/raw", self.raw)
        r.add_get(P + "/repository/files/{path:.+}", self.file)
        r.add_post(P + "/repository/files/{path:.+}", self.write_file)
        r.add_put(P + "/repository/files/{path:.+}", self.write_file)
        r.add_delete(P + "/repository/files/{path:.+}", self.write_file)

    # helpers -----------------------------------------------------------------------------------------------
    def project(self, request: web.Request, scope: str = "read_api") -> tuple[dict[str, Any], Caller]:
        who = caller(request, scope)
        return self.s.projects.get_visible(_raw(request, "id"), who), who

    def writable(self, request: web.Request) -> tuple[dict[str, Any], Caller]:
        project, who = self.project(request, "api")
        if who.user is None:
            raise gl_error(401)
        if not self.s.projects.writable(project, who):
            raise gl_error(403)
        return project, who

    def sha(self, project: dict[str, Any], ref: str | None) -> str | None:
        pwn = project["path_with_namespace"]
        return self.s.repos.resolve(pwn, ref or project["default_branch"])

    def branch_json(self, project: dict[str, Any], name: str, sha: str) -> dict[str, Any]:
        c = self.s.repos.commit(project["path_with_namespace"], sha)
        return {"name": name, "merged": False, "protected": name == project["default_branch"],
                "default": name == project["default_branch"], "developers_can_push": False,
                "developers_can_merge": False, "can_push": True,
                "web_url": f"{project['web_url']}/-/tree/{name}",
                "commit": commit_json(c, self.s.base_url, project) if c else None}

    # projects ----------------------------------------------------------------------------------------------
    async def list(self, request: web.Request) -> web.Response:
        who = caller(request)
        p = await params(request)
        found = [x for x in self.s.projects.all() if self.s.projects.visible(x, who)]
        if flag(p.get("owned")) and who.user:
            found = [x for x in found if x["creator_id"] == who.user["id"]]
        if flag(p.get("membership")) and who.user:
            found = [x for x in found if who.user["id"] in x["_members"]]
        if p.get("visibility"):
            found = [x for x in found if x["visibility"] == p["visibility"]]
        if p.get("search"):
            term = str(p["search"]).lower()
            found = [x for x in found if term in x["name"].lower() or term in x["path_with_namespace"].lower()]
        key = p.get("order_by", "created_at")
        if key not in ("id", "name", "path", "created_at", "updated_at", "last_activity_at", "similarity"):
            raise param_error("order_by does not have a valid value")
        field = {"updated_at": "last_activity_at", "similarity": "id"}.get(key, key)
        found.sort(key=lambda x: (x[field], x["id"]), reverse=p.get("sort", "desc") != "asc")
        return paginate(request, [self.s.projects.to_json(x) for x in found])

    async def create(self, request: web.Request) -> web.Response:
        who = user(request, "api")
        p = await params(request)
        if not p.get("name") and not p.get("path"):
            raise param_error("name, path are missing, at least one parameter must be provided")
        namespace = None
        if p.get("namespace_id"):
            ref = str(p["namespace_id"])
            namespace = next((n for n in self.s.projects.store.all("namespace")
                              if str(n["id"]) == ref or n["full_path"] == ref), None)
            if namespace is None or not (who.admin or namespace.get("owner_id") == who.user["id"]):
                raise not_found("Namespace")
        for unsupported_key in ("import_url", "template_name", "use_custom_template", "mirror"):
            if p.get(unsupported_key):
                from ..errors import unsupported

                raise unsupported(f"creating a project with {unsupported_key}")
        project = self.s.projects.create(who.user, p.get("name"), p.get("path"), namespace,
                                         p.get("visibility", "private"), p.get("description") or "",
                                         p.get("default_branch") or "main")
        if flag(p.get("initialize_with_readme")):
            self.s.repos.write(project["path_with_namespace"], project["default_branch"],
                               {"README.md": f"# {project['name']}\n".encode()}, "Initial commit",
                               Author(who.user["name"], who.user["email"]))
            project = self.s.projects.touch(project, empty_repo=False,
                                            readme_url=f"{project['web_url']}/-/blob/{project['default_branch']}"
                                                       "/README.md")
        return ok(self.s.projects.to_json(project), 201)

    async def get(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        return ok(self.s.projects.to_json(project))

    async def delete(self, request: web.Request) -> web.Response:
        project, who = self.writable(request)
        if not (who.admin or project["creator_id"] == who.user["id"]):
            raise gl_error(403)
        self.s.projects.delete(project)
        return ok({"message": "202 Accepted"}, 202)

    # the CI/CD job token's inbound allowlist --------------------------------------------------------------
    async def job_token_scope(self, request: web.Request) -> web.Response:
        self.writable(request)
        return ok({"inbound_enabled": True, "outbound_enabled": False})

    async def allowlist(self, request: web.Request) -> web.Response:
        project, _ = self.writable(request)
        listed = [self.s.projects.store.get("project", i) for i in project.get("_job_token_allowlist", [])]
        return paginate(request, [self.s.projects.to_json(p) for p in listed if p])

    async def allow(self, request: web.Request) -> web.Response:
        project, who = self.writable(request)
        p = await params(request)
        required(p, "target_project_id")
        target = self.s.projects.find(str(p["target_project_id"]))
        if target is None or not self.s.projects.visible(target, who):
            raise not_found("Project")
        allowed = project.get("_job_token_allowlist", [])
        if target["id"] in allowed:
            raise bad_request({"base": ["Target project is already in the job token scope"]})
        self.s.projects.touch(project, _job_token_allowlist=[*allowed, target["id"]])
        return ok({"source_project_id": project["id"], "target_project_id": target["id"]}, 201)

    async def disallow(self, request: web.Request) -> web.Response:
        project, _ = self.writable(request)
        target = int(request.match_info["target"])
        allowed = project.get("_job_token_allowlist", [])
        if target not in allowed:
            raise not_found("Project")
        self.s.projects.touch(project, _job_token_allowlist=[i for i in allowed if i != target])
        return web.Response(status=204)

    # branches ----------------------------------------------------------------------------------------------
    async def branches(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        p = await params(request)
        found = sorted(self.s.repos.branches(project["path_with_namespace"]).items())
        if p.get("search"):
            found = [b for b in found if str(p["search"]).lower() in b[0].lower()]
        return paginate(request, [self.branch_json(project, n, s) for n, s in found])

    async def branch(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        name = unquote(_raw(request, "branch"))
        sha = self.s.repos.branches(project["path_with_namespace"]).get(name)
        if sha is None:
            raise not_found("Branch")
        return ok(self.branch_json(project, name, sha))

    async def create_branch(self, request: web.Request) -> web.Response:
        project, _ = self.writable(request)
        p = await params(request)
        required(p, "branch", "ref")
        if p["branch"] in self.s.repos.branches(project["path_with_namespace"]):
            raise bad_request("Branch already exists")
        sha = self.sha(project, p["ref"])
        if sha is None:
            raise bad_request("Invalid reference name: " + str(p["ref"]))
        self.s.repos.set_branch(project["path_with_namespace"], p["branch"], sha)
        return ok(self.branch_json(project, p["branch"], sha), 201)

    async def delete_branch(self, request: web.Request) -> web.Response:
        project, _ = self.writable(request)
        name = unquote(_raw(request, "branch"))
        if name not in self.s.repos.branches(project["path_with_namespace"]):
            raise not_found("Branch")
        if name == project["default_branch"]:
            raise bad_request("Cannot remove the default branch")
        self.s.repos.set_branch(project["path_with_namespace"], name, None)
        return web.Response(status=204)

    # commits -----------------------------------------------------------------------------------------------
    async def commits(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        p = await params(request)
        sha = self.sha(project, p.get("ref_name"))
        if sha is None:
            if p.get("ref_name"):
                raise not_found("Commit")
            return paginate(request, [])
        log = self.s.repos.log(project["path_with_namespace"], sha, p.get("path"))
        return paginate(request, [commit_json(c, self.s.base_url, project) for c in log])

    async def commit(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        sha = self.sha(project, unquote(_raw(request, "sha")))
        c = self.s.repos.commit(project["path_with_namespace"], sha) if sha else None
        if c is None:
            raise not_found("Commit")
        return ok(commit_json(c, self.s.base_url, project) | {"last_pipeline": self._last_pipeline(project, sha),
                                                              "status": None})

    def _last_pipeline(self, project: dict[str, Any], sha: str) -> dict[str, Any] | None:
        if self.s.pipelines is None:
            return None
        return next((x for x in self.s.pipelines.list(project["id"]) if x.get("sha") == sha), None)

    async def diff(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        sha = self.sha(project, unquote(_raw(request, "sha")))
        if sha is None:
            raise not_found("Commit")
        return paginate(request, self.s.repos.diff_stats(project["path_with_namespace"], sha))

    async def create_commit(self, request: web.Request) -> web.Response:
        project, who = self.writable(request)
        p = await params(request)
        required(p, "branch", "commit_message", "actions")
        changes: dict[str, bytes | None] = {}
        pwn = project["path_with_namespace"]
        start = p.get("start_branch") or p["branch"]
        head = self.sha(project, start) if self.s.repos.branches(pwn) else None
        for action in p["actions"]:
            kind, path = action.get("action"), action.get("file_path")
            if not path or kind not in ("create", "update", "delete", "move", "chmod"):
                raise param_error("actions[action] does not have a valid value")
            exists = head is not None and self.s.repos.read_file(pwn, head, path) is not None
            if kind == "create" and exists:
                raise bad_request("A file with this name already exists")
            if kind in ("update", "delete") and not exists:
                raise bad_request("A file with this name doesn't exist")
            if kind in ("move", "chmod"):
                from ..errors import unsupported

                raise unsupported(f"the commit action {kind!r}")
            changes[path] = None if kind == "delete" else _content(action.get("content") or "",
                                                                   action.get("encoding"))
        sha = self.s.repos.write(pwn, p["branch"], changes, p["commit_message"], _author(who, p), start)
        self.s.projects.touch(project, empty_repo=False)
        c = self.s.repos.commit(pwn, sha)
        return ok(commit_json(c, self.s.base_url, project), 201)

    # tree and files ----------------------------------------------------------------------------------------
    async def tree(self, request: web.Request) -> web.Response:
        project, _ = self.project(request)
        p = await params(request)
        sha = self.sha(project, p.get("ref"))
        if sha is None:
            raise not_found("Tree")
        base = str(p.get("path") or "").strip("/")
        files = self.s.repos.list_files(project["path_with_namespace"], sha)
        entries: dict[str, str] = {}
        for f in files:
            if base and not f.startswith(base + "/"):
                continue
            rest = f[len(base) + 1:] if base else f
            if flag(p.get("recursive")):
                parts = rest.split("/")
                for i in range(1, len(parts)):
                    entries["/".join(parts[:i])] = "tree"
                entries[rest] = "blob"
            else:
                head, sep, _ = rest.partition("/")
                entries[head] = "tree" if sep else "blob"
        out = [{"id": hashlib.sha1(f"{sha}:{k}".encode()).hexdigest(), "name": k.rsplit("/", 1)[-1], "type": t,
                "path": f"{base}/{k}" if base else k, "mode": "040000" if t == "tree" else "100644"}
               for k, t in sorted(entries.items(), key=lambda e: (e[1] != "tree", e[0]))]
        return paginate(request, out)

    def _read(self, request: web.Request, p: dict[str, Any]) -> tuple[dict[str, Any], str, str, bytes]:
        project, _ = self.project(request)
        path = unquote(_raw(request, "path"))
        required(p, "ref")
        sha = self.sha(project, p["ref"])
        data = self.s.repos.read_file(project["path_with_namespace"], sha, path) if sha else None
        if data is None:
            raise not_found("File")
        return project, path, sha, data

    async def file(self, request: web.Request) -> web.Response:
        p = await params(request)
        project, path, sha, data = self._read(request, p)
        last = self.s.repos.log(project["path_with_namespace"], sha, path, limit=1)
        body = {"file_name": path.rsplit("/", 1)[-1], "file_path": path, "size": len(data), "encoding": "base64",
                "content": base64.b64encode(data).decode(), "content_sha256": hashlib.sha256(data).hexdigest(),
                "ref": p["ref"], "blob_id": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                "commit_id": sha, "last_commit_id": last[0].id.decode() if last else sha, "execute_filemode": False}
        if request.method == "HEAD":
            return web.Response(headers={f"X-Gitlab-{k.replace('_', '-').title()}": str(v)
                                         for k, v in body.items() if k != "content"})
        return ok(body)

    async def raw(self, request: web.Request) -> web.Response:
        p = await params(request)
        p.setdefault("ref", None)
        if not p["ref"]:
            project, _ = self.project(request)
            p["ref"] = project["default_branch"]
        _, _, _, data = self._read(request, p)
        return web.Response(body=data, content_type="text/plain")

    async def write_file(self, request: web.Request) -> web.Response:
        project, who = self.writable(request)
        p = await params(request)
        path = unquote(_raw(request, "path"))
        required(p, "branch", "commit_message")
        pwn = project["path_with_namespace"]
        start = p.get("start_branch") or p["branch"]
        head = self.sha(project, start) if self.s.repos.branches(pwn) else None
        exists = head is not None and self.s.repos.read_file(pwn, head, path) is not None
        if request.method == "POST" and exists:
            raise bad_request("A file with this name already exists")
        if request.method != "POST" and not exists:
            raise bad_request("A file with this name doesn't exist")
        if request.method != "DELETE":
            required(p, "content")
        content = None if request.method == "DELETE" else _content(p["content"], p.get("encoding"))
        self.s.repos.write(pwn, p["branch"], {path: content}, p["commit_message"], _author(who, p), start)
        self.s.projects.touch(project, empty_repo=False)
        if request.method == "DELETE":
            return web.Response(status=204)
        return ok({"file_path": path, "branch": p["branch"]}, 201 if request.method == "POST" else 200)


def _raw(request: web.Request, name: str) -> str:
    """A path parameter as sent (``shop%2Fshop`` stays encoded: GitLab routes on it before decoding)."""
    return request.match_info[name]


def _content(content: str, encoding: str | None) -> bytes:
    if encoding == "base64":
        return base64.b64decode(content)
    if encoding not in (None, "", "text"):
        raise param_error("encoding does not have a valid value")
    return content.encode()


def _author(who: Caller, p: dict[str, Any]) -> Author:
    return Author(p.get("author_name") or who.user["name"], p.get("author_email") or who.user["email"])
