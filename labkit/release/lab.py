"""``lab.release``: chapter 10's one change through the whole platform, the same on every backend — a commit pushed
to ``shop/shop`` (git), its pipeline followed job by job (GitLab's API), the image it pushed (Harbor's audit log),
the deploy job's commit to ``shop/manifests``, Argo CD's sync of it, the rollout (pods labelled with the new
version), and the change seen through HAProxy. Each stage's moment is kept (``Rollout.stages``) for the dashboard
and ``benchmarks/end_to_end.py``.

Also the chapter's start (``prepare``: the shop meshed and deployed once through the whole chain), its rollback
(``git revert`` on ``shop/manifests``) and its fault (the deploy job's token without write access)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError
from ..gitlab.manifests_access import SCOPES, TOKEN, TOKEN_NAME
from .changes import FEATURE

if TYPE_CHECKING:
    import pandas as pd

    from ..lab import Lab
    from ..traffic import Traffic
    from .dashboard import Dashboard

SHOP, MANIFESTS = "shop/shop", "shop/manifests"
SERVICE = "catalog"
Progress = Callable[[str], None] | None
READ_ONLY = ["read_repository"]  # the fault's token: it clones shop/manifests but cannot push


@dataclass
class Rollout:
    """One commit of ``shop/shop`` on its way: the moments (epoch seconds) it reached each stage."""

    sha: str
    pushed: float
    pipeline: int | None = None
    manifests: str = ""  # the deploy job's commit to shop/manifests
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The image tag the pipeline builds (``$CI_COMMIT_SHORT_SHA``)."""
        return self.sha[:8]

    def frame(self) -> pd.DataFrame:
        """The stages in order, with seconds since the push."""
        import pandas as pd

        rows = [{"stage": k, "at": pd.Timestamp(v, unit="s", tz="UTC"), "seconds": round(v - self.pushed, 1)}
                for k, v in sorted(self.stages.items(), key=lambda kv: kv[1])]
        return pd.DataFrame(rows, columns=["stage", "at", "seconds"])


class ReleaseView:
    """What notebook 10, ``lab.chapter(10)`` and the end-to-end benchmark do across the products."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    # -- the shop as it runs ---------------------------------------------------------------------------------
    def served(self, path: str = "/api/products", timeout: float = 5) -> dict[str, Any]:
        """The shop's answer through HAProxy, as a browser gets it."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.lab.url("haproxy").rstrip("/") + path, timeout=timeout) as r:
            return dict(json.loads(r.read()))

    def versions(self, app: str = SERVICE) -> pd.DataFrame:
        """The app's pods: version label, image, ready, terminating."""
        import pandas as pd

        rows = []
        for pod in self.lab.kubernetes.core().list_namespaced_pod("shop", label_selector=f"app={app}").items:
            image = next((c.image for c in pod.spec.containers if c.name == app), "")
            ready = all(s.ready for s in pod.status.container_statuses or []) and bool(pod.status.container_statuses)
            rows.append({"pod": pod.metadata.name, "version": (pod.metadata.labels or {}).get("version", ""),
                         "image": image, "ready": ready, "terminating": pod.metadata.deletion_timestamp is not None})
        return pd.DataFrame(rows, columns=["pod", "version", "image", "ready", "terminating"])

    def on_version(self, tag: str, app: str = SERVICE) -> tuple[int, int]:
        """(ready pods of ``app`` at version ``tag``, pods of ``app``), terminating ones counted as pods."""
        pods = self.versions(app)
        return int(((pods["version"] == tag) & pods["ready"] & ~pods["terminating"]).sum()), len(pods)

    # -- one release --------------------------------------------------------------------------------------
    def push(self, change: Callable[[Path], Any], message: str) -> str:
        """Commit ``change`` (an edit of a ``shop/shop`` working copy) and ``git push``: the commit."""
        sha = self.lab.gitlab.commit(change, message, project=SHOP)
        if sha is None:
            raise LabError(f"{message!r} changed nothing in {SHOP}: is it already pushed? `git log` says")
        return sha

    def follow(self, sha: str, dashboard: Dashboard | None = None, expect: Callable[[dict[str, Any]], bool] | None
               = None, timeout: float | None = None, progress: Progress = print) -> Rollout:
        """Follow commit ``sha`` through every stage (``Rollout.stages``, marked on ``dashboard``): its pipeline
        to success, its image in Harbor, the deploy job's commit to ``shop/manifests``, Argo CD Synced and Healthy
        at that commit, every catalog pod at the new version, and (``expect``) the answer through HAProxy. A stage
        not reached in time raises a LabError that says which, and where to look."""
        limit = timeout if timeout is not None else self.lab.timings.pipeline_seconds + 120
        deadline = time.monotonic() + limit
        run = Rollout(sha, self._commit_time(sha))

        def reached(stage: str, at: float | None = None, detail: str = "") -> None:
            run.stages[stage] = at if at is not None else time.time()
            if dashboard is not None:
                dashboard.mark(stage, run.stages[stage])
            if progress is not None:
                progress(f"{run.stages[stage] - run.pushed:6.1f} s  {stage}{': ' + detail if detail else ''}")

        reached("pushed", run.pushed, f"{SHOP}@{run.tag}")
        pipeline = self.lab.gitlab.pipeline_for(sha, SHOP)
        run.pipeline = int(pipeline["id"])
        if dashboard is not None:
            dashboard.pipeline(run.pipeline)
        reached("pipeline created", _epoch(pipeline["created_at"]), f"#{run.pipeline}")
        jobs = self._pipeline(run.pipeline, deadline, progress)
        for stage, ci_stage in (("images built", "build"), ("tests passed", "test"), ("scanned", "security")):
            done = [_epoch(j["finished_at"]) for j in jobs if j.get("stage") == ci_stage and j["finished_at"]]
            if done:
                reached(stage, max(done))
        pushed = self._image_pushed(run.tag, deadline)
        reached("image in Harbor", pushed, f"shop/{SERVICE}:{run.tag}")
        deploy = next((j for j in jobs if j["name"] == "deploy"), None)
        head = self.lab.gitlab.project(MANIFESTS).commits.get("main")
        if deploy is None or not head.title.endswith(run.tag):
            raise LabError(f"{MANIFESTS} does not deploy {run.tag} (its head: {head.title!r}); the deploy job's log "
                           "says why")
        run.manifests = head.id
        reached("committed to shop/manifests", _epoch(head.committed_date), head.short_id)
        app = self.lab.argocd.wait(revision=run.manifests, timeout=max(1.0, deadline - time.monotonic()))
        finished = (app.get("status", {}).get("operationState") or {}).get("finishedAt")
        reached("Argo CD synced", _epoch(finished) if finished else None, f"{MANIFESTS}@{run.manifests[:8]}")
        self._wait(lambda: self._all_on(run.tag), deadline, f"every {SERVICE} pod ready at version {run.tag}",
                   progress, lambda: "{} of {} {} pods at {}".format(*self.on_version(run.tag), SERVICE, run.tag))
        reached(f"100% of {SERVICE} on {run.tag}")
        if expect is not None:
            self._wait(lambda: expect(self.served()), deadline, "the change served through HAProxy", None)
            reached("served through HAProxy")
        return run

    def _all_on(self, tag: str) -> bool:
        ready, pods = self.on_version(tag)
        return ready == pods > 0

    def _commit_time(self, sha: str) -> float:
        return _epoch(self.lab.gitlab.project(SHOP).commits.get(sha).committed_date)

    def _pipeline(self, pipeline_id: int, deadline: float, progress: Progress) -> list[dict[str, Any]]:
        """Until the pipeline finishes: its jobs; a LabError with the failed jobs' log tails when it fails."""
        shown = ""
        while True:
            pipeline = dict(self.lab.gitlab.project(SHOP).pipelines.get(pipeline_id).attributes)
            jobs = self.lab.gitlab.jobs(pipeline_id, SHOP)
            line = f"pipeline #{pipeline_id} {pipeline['status']}: " + ", ".join(
                f"{j['name']} {j['status']}" for j in sorted(jobs, key=lambda j: j["id"]))
            if progress is not None and line != shown:
                progress(f"         {line}")
                shown = line
            if pipeline["status"] == "success":
                return jobs
            if pipeline["status"] in ("failed", "canceled", "skipped"):
                failed = [j for j in jobs if j["status"] == "failed"]
                tails = "; ".join(f"{j['name']}: …{self.lab.gitlab.trace(j['id'], SHOP)[-300:].strip()}"
                                  for j in failed)
                raise LabError(f"pipeline #{pipeline_id} {pipeline['status']}: {tails or 'no job failed'}")
            if time.monotonic() > deadline:
                raise LabError(f"pipeline #{pipeline_id} still {pipeline['status']}: {line}")
            time.sleep(1.0)

    def _image_pushed(self, tag: str, deadline: float) -> float:
        """When Harbor's audit log says ``shop/catalog:<tag>`` was created."""
        resource = f"shop/{SERVICE}:{tag}"
        while True:
            log = self.lab.registry.audit_log(page_size=50, q="operation=create")
            hit = log[log["Resource"] == resource]
            if not hit.empty:
                return float(hit["Timestamp"].min().timestamp())
            if time.monotonic() > deadline:
                raise LabError(f"Harbor's audit log has no create of {resource}: did the build job push? "
                               "lab.registry.audit_log()")
            time.sleep(0.5)

    @staticmethod
    def _wait(reached: Callable[[], bool], deadline: float, what: str, progress: Progress,
              status: Callable[[], str] | None = None) -> None:
        shown = ""
        while True:
            try:
                if reached():
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass  # not answering yet: the deadline decides
            line = status() if status is not None else ""
            if progress is not None and line and line != shown:
                progress(f"         {line}")
                shown = line
            if time.monotonic() > deadline:
                raise LabError(f"timed out waiting for {what}{' (' + line + ')' if line else ''}")
            time.sleep(0.5)

    # -- the new version in logs and traces -------------------------------------------------------------------
    def feature_logs(self, tag: str, start: str = "now-15m") -> pd.DataFrame:
        """The log lines only the new version writes (``feature: ratings``) from pods at version ``tag``."""
        return self.lab.logging.search(f'feature: {FEATURE} and kubernetes.labels.version: "{tag}"', start=start,
                                       fields=["kubernetes.pod_name", "msg", "trace_id"], size=20)

    def trace_of_new_version(self, tag: str, timeout: float = 30) -> dict[str, Any]:
        """A trace, from Jaeger, of a request a pod at version ``tag`` served: found through the log line only
        that version writes (its ``trace_id``); the trace as Jaeger's API gives it."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.feature_logs(tag)
            for trace_id in [t for t in logs.get("trace_id", []) if t][:3]:
                try:
                    trace = self.lab.mesh.trace(trace_id)
                except Exception:  # not in Jaeger yet (spans are batched): the next round asks again
                    continue
                # the sidecars' spans may come before the app's own (each exporter batches): wait for the app's
                if tag in _versions(trace, SERVICE):
                    return trace
            if time.monotonic() > deadline:
                raise LabError(f"no trace of a request served by {SERVICE} {tag} in {timeout:.0f} s: "
                               f"{len(logs)} log lines with feature: {FEATURE}, their trace ids "
                               f"{list(logs.get('trace_id', []))[:3]} not in Jaeger with {SERVICE}'s own spans")
            time.sleep(1.0)

    def wait_version(self, tag: str, timeout: float = 120, progress: Progress = print) -> None:
        """Until every catalog pod runs, ready, at version ``tag`` (and no other is left)."""
        self._wait(lambda: self._all_on(tag), time.monotonic() + timeout, f"every {SERVICE} pod at version {tag}",
                   progress, lambda: "{} of {} {} pods at {}".format(*self.on_version(tag), SERVICE, tag))

    # -- rollback -------------------------------------------------------------------------------------------
    def revert(self, project: str = MANIFESTS) -> str:
        """``git revert`` the head of ``project`` (by default ``shop/manifests``: the bad release's deploy commit)
        and push, as a person would in a clone: the revert commit."""
        import tempfile

        git = self.lab.gitlab.git
        with tempfile.TemporaryDirectory(prefix="labkit-revert-") as tmp:
            work = self.lab.gitlab.clone(Path(tmp) / "work", project=project)
            git("revert", "--no-edit", "HEAD", cwd=work)
            git("push", "--quiet", "origin", "HEAD", cwd=work)
            return str(git("rev-parse", "HEAD", cwd=work).stdout.strip())

    # -- the chapter's start ---------------------------------------------------------------------------------
    def meshed(self) -> bool:
        """Every shop Deployment exports spans through its sidecar (``lab.mesh.enable``) and every pod has one."""
        from ..mesh.lab import OTLP_IN_CLUSTER

        for d in self.lab.kubernetes.apps().list_namespaced_deployment("shop").items:
            envs = [{e.name: e.value for e in c.env or []} for c in d.spec.template.spec.containers]
            if not any(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == OTLP_IN_CLUSTER for env in envs):
                return False
        pods = self.lab.mesh.pods()
        return bool(len(pods)) and bool(pods["sidecar"].all())

    def deployed(self) -> bool:
        """``shop/manifests`` deploys the head of ``shop/shop`` and Argo CD runs it, Synced and Healthy."""
        from ..argocd.chapter import synced_and_healthy

        tag = self.lab.gitlab.head(SHOP)[:8]
        head = self.lab.gitlab.project(MANIFESTS).commits.get("main")
        app = self.lab.argocd.get()
        return head.title.endswith(tag) and app is not None and synced_and_healthy(head.id)(app)

    def prepare(self, progress: Progress = print, timeout: float | None = None) -> list[str]:
        """Chapter 10's start: the shop meshed (spans to Jaeger), the deploy job's token able to push, and the head
        of ``shop/shop`` deployed through the whole chain once (pipeline → Harbor → ``shop/manifests`` → Argo CD's
        ``shop`` Application, auto-sync). Idempotent; what it did."""
        done = self.restore_deploy_token()
        if self.lab.argocd.get() is None:
            self.lab.argocd.create_application()
            self.lab.argocd.add_webhook()
            done.append("Application shop created (auto-sync, self-heal, prune)")
        if self.deployed() and self.meshed():
            return done
        sha = self.lab.gitlab.head(SHOP)
        head = self.lab.gitlab.project(MANIFESTS).commits.get("main")
        started = None
        if not head.title.endswith(sha[:8]):
            started = self.lab.gitlab.project(SHOP).pipelines.create({"ref": "main"})
            done.append(f"pipeline #{started.id} of {SHOP}@{sha[:8]} run to deploy it")
        if not self.meshed():  # one rollout for this and, once the pipeline deployed, another for the new tag
            self.lab.mesh.enable(wait=False)
            done.append("the shop meshed")
        deadline = time.monotonic() + (timeout or self.lab.timings.pipeline_seconds + 120)
        if started is not None:
            self._pipeline(int(started.id), deadline, None)
            head = self.lab.gitlab.project(MANIFESTS).commits.get("main")
        self.lab.argocd.wait(revision=head.id, timeout=max(1.0, deadline - time.monotonic()))
        self._wait(lambda: self._all_on(sha[:8]) and self.meshed(), deadline,
                   f"every {SERVICE} pod at version {sha[:8]}, with its sidecar", progress,
                   lambda: "{} of {} pods at the new version".format(*self.on_version(sha[:8])))
        self.lab.shop.wait_ready(timeout=max(1.0, deadline - time.monotonic()))
        return done

    def dashboard(self, traffic: Traffic | None = None) -> Dashboard:
        """The live dashboard, from now on (``mark``, ``figure``, ``close``)."""
        from .dashboard import Dashboard

        return Dashboard(self.lab, traffic)

    # -- the fault: a deploy token that cannot push -------------------------------------------------------
    def deploy_token(self) -> dict[str, Any]:
        """The token the deploy job pushes with: the instance variable's value, as an administrator reads it, looked
        up with GitLab's token information API (``POST /admin/token``): name, scopes, active."""
        gl = self.lab.gitlab.client()
        value = gl.variables.get(TOKEN).value
        return dict(gl.http_post("/admin/token", post_data={"token": value}))  # type: ignore[arg-type]

    def _set_token(self, scopes: list[str], name: str) -> None:
        gl = self.lab.gitlab.client()
        gl.auth()
        assert gl.user is not None
        expires = (date.today() + timedelta(days=364)).isoformat()
        token = gl.users.get(gl.user.id).personal_access_tokens.create(
            {"name": name, "scopes": scopes, "expires_at": expires}).token
        variable = gl.variables.get(TOKEN)
        variable.value = token
        variable.save()

    def break_deploy_token(self) -> None:
        """The fault: ``MANIFESTS_TOKEN`` replaced by a token that reads repositories but cannot push."""
        self._set_token(READ_ONLY, TOKEN_NAME + "-ro")

    def restore_deploy_token(self) -> list[str]:
        """``MANIFESTS_TOKEN`` able to push again (a new ``write_repository`` token) when it cannot; what it did."""
        import gitlab

        try:
            token = self.deploy_token()
            if token.get("active") and "write_repository" in token.get("scopes", []):
                return []
        except gitlab.GitlabError:  # no such token (revoked and gone, or never one): a new one
            pass
        self._set_token(SCOPES, TOKEN_NAME)
        return [f"{TOKEN} replaced by a token with write_repository"]


def _epoch(stamp: str) -> float:
    """An ISO 8601 time of GitLab's or Argo CD's as epoch seconds."""
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _versions(trace: dict[str, Any], service: str) -> set[str]:
    """The ``service.version`` of ``service``'s own spans in a Jaeger trace."""
    return {tag["value"] for process in trace.get("processes", {}).values() if process.get("serviceName") == service
            for tag in process.get("tags", []) if tag.get("key") == "service.version"}
