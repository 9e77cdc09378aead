"""``lab.registry``: the lab's Harbor, the same on every backend: the OCI distribution API (``client()``,
``images()``) and Harbor's REST API with the administrator's credentials (``harbor()``, and the tables a person
reads in Harbor's UI: projects, robot accounts, artifacts, the audit log)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.secrets import REGISTRY_PASSWORD, Secrets
from ..core.view import ProductView
from ..endpoints import RegistryEndpoint
from ..images.client import RegistryClient
from ..images.harbor import CI_ROBOT, SHOP_PROJECT, Harbor, robot_name

if TYPE_CHECKING:
    import pandas as pd

CHAPTER_PROJECTS = ("team",)  # what notebook 05 creates, deleted by lab.chapter(5) and its clean-up
# The audit log's columns, as Harbor's UI (and the talk's slide) shows them, and the API fields behind them
AUDIT_COLUMNS = {"username": "Username", "resource": "Resource", "resource_type": "Resource Type",
                 "operation": "Operation", "op_time": "Timestamp"}


class RegistryView(ProductView):
    @property
    def endpoint(self) -> RegistryEndpoint:
        return self.lab.endpoints.get(RegistryEndpoint)

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) a push needs: Harbor's ``admin`` and the lab's password."""
        ep = self.endpoint
        return (ep.user, Secrets(self.lab.paths.secrets).get(REGISTRY_PASSWORD)) if ep.user else None

    def client(self) -> RegistryClient:
        """A distribution API client with the lab's push credentials."""
        return RegistryClient(self.endpoint.url, *(self.credentials() or (None, None)))

    def harbor(self, user: str | None = None, password: str | None = None) -> Harbor:
        """Harbor's REST API (``/api/v2.0``) as ``user`` (default: the administrator); close it when done."""
        if not self.endpoint.api:
            raise RuntimeError("this lab's registry has no Harbor API (RegistryEndpoint.api is empty)")
        admin = self.credentials() or ("admin", "")
        return Harbor(self.endpoint.api, user or admin[0], password if user else admin[1])

    def get(self, path: str, **params: Any) -> Any:
        """``GET /api/v2.0{path}`` as the administrator: the JSON answer."""
        harbor = self.harbor()
        try:
            return harbor.call("GET", path, params=params).json()
        finally:
            harbor.close()

    def images(self) -> pd.DataFrame:
        """Every repository and tag with its manifest digest (``/v2/_catalog``, ``tags/list``, ``HEAD``)."""
        from .views import image_table

        client = self.client()
        try:
            return image_table(client)
        finally:
            client.close()

    def projects(self) -> pd.DataFrame:
        """Harbor's projects: name, access level (metadata ``public`` is the string "true"/"false"), repositories."""
        from .views import project_table

        return project_table(self.get("/projects", page_size=100))

    def robots(self, project: str = SHOP_PROJECT) -> pd.DataFrame:
        """The project's robot accounts and what each may do (``resource:action``)."""
        from .views import robot_table

        pid = self.get(f"/projects/{project}")["project_id"]
        return robot_table(self.get("/robots", q=f"Level=project,ProjectID={pid}", page_size=100))

    def robot_actions(self, name: str = robot_name(SHOP_PROJECT, CI_ROBOT), project: str = SHOP_PROJECT) -> set[str]:
        """What robot ``name`` may do on its project's repositories (``{"push", "pull"}`` for the CI robot)."""
        found = self.robots(project)
        rows = found[found["name"] == name]
        return set(rows.iloc[0]["repository"]) if len(rows) else set()

    def artifacts(self, repository: str, project: str = SHOP_PROJECT) -> pd.DataFrame:
        """A repository's artifacts, newest push first: digest, tags, size, push and pull times."""
        from .views import artifact_table

        name = repository.removeprefix(f"{project}/").replace("/", "%252F")  # a/b is a%252Fb on Harbor's paths
        return artifact_table(self.get(f"/projects/{project}/repositories/{name}/artifacts", page_size=100,
                                       with_tag="true", sort="-push_time"))

    def audit_log(self, page_size: int = 10, q: str | None = None) -> pd.DataFrame:
        """The newest audit log entries, with the columns of Harbor's UI: Username, Resource, Resource Type,
        Operation, Timestamp (``/api/v2.0/audit-logs``, ``sort=-op_time``; ``q`` filters, e.g.
        ``operation=create``)."""
        import pandas as pd

        params: dict[str, Any] = {"page_size": page_size, "sort": "-op_time"}
        if q:
            params["q"] = q
        rows = self.get("/audit-logs", **params)
        frame = pd.DataFrame([{k: r.get(k) for k in AUDIT_COLUMNS} for r in rows], columns=list(AUDIT_COLUMNS))
        frame["op_time"] = pd.to_datetime(frame["op_time"], utc=True)
        return frame.rename(columns=AUDIT_COLUMNS)

    def restore(self, chapter_projects: tuple[str, ...] = CHAPTER_PROJECTS) -> list[str]:
        """Harbor as the lab made it: project ``shop`` public, the CI robot enabled with push and pull (and the
        lab's secret), the projects chapter 05 creates (``team``) deleted with their repositories and robots.
        Returns what was repaired."""
        from ..images.harbor import ci_secret

        repaired: list[str] = []
        harbor = self.harbor()
        try:
            project = harbor.ensure_project(SHOP_PROJECT, public=True)
            robot = harbor.ensure_robot(project, CI_ROBOT, ci_secret(Secrets(self.lab.paths.secrets)),
                                        ("push", "pull"), "the shop's GitLab pipeline pushes its images with it")
            if harbor.set_robot_actions(robot.id, SHOP_PROJECT, ("push", "pull")):
                repaired.append(f"Harbor: {robot.name} may push and pull on {SHOP_PROJECT} again")
            for other in harbor.call("GET", "/projects", params={"page_size": 100}).json():
                if other["name"] in chapter_projects:
                    self._delete_project(harbor, other["name"])
                    repaired.append(f"Harbor: project {other['name']} deleted")
        finally:
            harbor.close()
        return repaired

    @staticmethod
    def _delete_project(harbor: Harbor, name: str) -> None:
        """Harbor deletes only an empty project: its repositories first, then its robots, then the project."""
        for repo in harbor.call("GET", f"/projects/{name}/repositories", params={"page_size": 100}).json():
            short = repo["name"].removeprefix(f"{name}/").replace("/", "%252F")
            harbor.call("DELETE", f"/projects/{name}/repositories/{short}", ok=(200, 404))
        pid = harbor.call("GET", f"/projects/{name}").json()["project_id"]
        for robot in harbor.call("GET", "/robots", params={"q": f"Level=project,ProjectID={pid}"}).json():
            harbor.call("DELETE", f"/robots/{robot['id']}", ok=(200, 404))
        harbor.call("DELETE", f"/projects/{name}", ok=(200, 404))

    def reduce_ci_robot(self, actions: tuple[str, ...] = ("pull",)) -> None:
        """Give the CI robot only ``actions`` (the chapter's fault: a pull-only robot cannot push)."""
        harbor = self.harbor()
        try:
            project = harbor.call("GET", f"/projects/{SHOP_PROJECT}").json()
            found = harbor.find_robot(project, CI_ROBOT)
            if found is None:
                raise RuntimeError(f"Harbor has no robot {robot_name(SHOP_PROJECT, CI_ROBOT)}: run lab.chapter(5)")
            harbor.set_robot_actions(int(found["id"]), SHOP_PROJECT, actions)
        finally:
            harbor.close()
