"""``lab.haproxy``: HAProxy's stats and Runtime API from a notebook, on either backend."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import LabError
from ..core.files import write_atomic
from ..core.view import ProductView
from ..core.waiting import until
from ..endpoints import HAProxyEndpoint
from .runtime import runtime_command

if TYPE_CHECKING:
    import pandas as pd

STATES = ("ready", "drain", "maint")


class HAProxyView(ProductView):
    """``lab.haproxy``: HAProxy's stats and Runtime API (drain, disable, enable servers), its config and reloads."""

    @property
    def endpoint(self) -> HAProxyEndpoint:
        return self.lab.endpoints.get(HAProxyEndpoint)

    def command(self, command: str) -> str:
        """Any Runtime API command (``show info``, ``show servers state``, ...)."""
        return runtime_command(self.endpoint.runtime, command)

    def stats(self) -> pd.DataFrame:
        """``show stat`` as a DataFrame: one row per frontend, backend and server."""
        import pandas as pd

        text = self.command("show stat").lstrip("# ")
        rows = list(csv.DictReader(io.StringIO(text)))
        df = pd.DataFrame(rows).replace("", None)
        for col in ("scur", "smax", "stot", "bin", "bout", "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "econ", "eresp",
                    "wretr", "wredis", "chkfail", "chkdown", "lastchg", "downtime", "weight", "rate", "check_code"):
            if col in df:
                df[col] = pd.to_numeric(df[col], errors="coerce")
        return df.rename(columns={"pxname": "proxy", "svname": "server"})

    def servers(self, backend: str = "shop-gateway") -> pd.DataFrame:
        """The servers of one backend with their state (UP, DOWN, DRAIN, MAINT; ``UP 1/2`` is UP but one check
        short of full health, ``DOWN 1/2`` DOWN with good checks counting towards ``rise``) and counters."""
        df = self.stats()
        keep = ["server", "status", "weight", "scur", "stot", "hrsp_2xx", "hrsp_5xx", "chkfail", "check_status"]
        rows = df[(df["proxy"] == backend) & ~df["server"].isin(["FRONTEND", "BACKEND"])]
        rows = rows[[c for c in keep if c in rows]].set_index("server")
        empty = [c for c in ("hrsp_2xx", "hrsp_5xx") if c in rows and len(rows) and rows[c].isna().all()]
        return rows.drop(columns=empty)  # a TCP backend (the API servers) counts no HTTP statuses

    def set_state(self, server: str, state: str, backend: str = "shop-gateway") -> str:
        """Drain, disable (maint) or enable (ready) a server, live."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        return self.command(f"set server {backend}/{server} state {state}")

    def drain(self, server: str, backend: str = "shop-gateway") -> str:
        return self.set_state(server, "drain", backend)

    def disable(self, server: str, backend: str = "shop-gateway") -> str:
        return self.set_state(server, "maint", backend)

    def enable(self, server: str, backend: str = "shop-gateway") -> str:
        return self.set_state(server, "ready", backend)

    def balance(self, backend: str = "shop-gateway") -> str:
        """The algorithm ``backend`` balances with now (HAProxy's own ``algo`` stat)."""
        df = self.stats()
        return str(df[(df["proxy"] == backend) & (df["server"] == "BACKEND")]["algo"].iloc[0])

    def config(self, section: str = "backend shop-gateway") -> str:
        """A section of the configuration HAProxy runs (the whole file with ``section=""``)."""
        text = Path(self.endpoint.config).read_text()
        if not section:
            return text
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip() == section)
        end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()), len(lines))
        return "\n".join(lines[start:end]).rstrip() + "\n"

    def configure(self, **options: object) -> str:
        """Change the lesson options (``balance``, ``retries``, ``catalog_check``): re-render and hitless reload;
        returns once the new worker answers the Runtime API."""
        return self._reloading(lambda: self.lab.action("haproxy", "configure", **options))

    def _worker(self) -> str:
        """The pid of the worker answering the Runtime API (``show info``), "" while none does."""
        try:
            info = self.command("show info")
        except OSError:
            return ""
        return next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Pid:")), "")

    def _new_worker(self, before: str, timeout: float = 15.0) -> None:
        """Wait until a worker other than ``before`` answers: after a reload the old one keeps answering for a
        moment, with the old config."""
        if not until(lambda: self._worker() not in ("", before), timeout, every=0.05):
            raise LabError(f"HAProxy did not start a new worker within {timeout:.0f} s of the reload")

    def _reloading(self, act: Callable[[], str]) -> str:
        """Run ``act`` (which reloads HAProxy) and return once the new worker answers."""
        before = self._worker()
        result = act()
        self._new_worker(before)
        return result

    def set_balance(self, algorithm: str) -> str:
        """Switch the shop's balancing algorithm (roundrobin, leastconn, source, ...): re-render and reload."""
        return self.configure(balance=algorithm)

    def reload(self) -> str:
        """Hitless reload (the master starts new workers, old ones finish their connections)."""
        return self._reloading(lambda: self.lab.action("haproxy", "reload"))

    def repair(self) -> list[str]:
        """The config back to the template's defaults (balance, retries, health checks), every drained or
        disabled server enabled, then every server UP (an API server or a node just started again passes its
        health checks first)."""
        before = self._worker()
        done = [f"haproxy {option} back to its default" for option in self.lab.action("haproxy", "defaults")]
        if done:  # reloaded
            self._new_worker(before)
        df = self.stats()
        servers = df[~df["server"].isin(["FRONTEND", "BACKEND"])]
        for _, row in servers[servers["status"].str.startswith(("MAINT", "DRAIN"))].iterrows():
            self.set_state(row["server"], "ready", row["proxy"])
            done.append(f"enabled {row['proxy']}/{row['server']}")
        if done:
            self.wait_up("kube-apiservers")
        return done

    def wait_up(self, backend: str = "shop-gateway", timeout: float = 30.0, must: bool = True) -> bool:
        """Wait until HAProxy's health checks see every server of ``backend`` UP; after ``timeout`` seconds raise
        (or, with ``must=False``, return False)."""
        def all_up() -> bool:
            servers = self.servers(backend)
            return bool(len(servers)) and bool(servers["status"].eq("UP").all())

        if until(all_up, timeout):
            return True
        if not must:
            return False
        raise LabError(f"HAProxy does not see every server of {backend} UP after {timeout:.0f} s:\n"
                       f"{self.servers(backend)}")

    def wait_state(self, server: str, status: str, backend: str = "shop-gateway", timeout: float = 20.0) -> bool:
        """Wait until HAProxy reports ``server`` of ``backend`` in ``status`` (``DOWN``, ``UP``, ``MAINT``, ...);
        False when it did not within ``timeout`` seconds."""
        return until(lambda: self.servers(backend).loc[server, "status"] == status, timeout)

    def use_for_the_api(self) -> None:
        """Chapter 1's step: from now on the kubeconfig reaches the API servers through HAProxy's API frontend."""
        import yaml

        path = Path(self.lab.kubeconfig)
        cfg = yaml.safe_load(path.read_text())
        if cfg["clusters"][0]["cluster"]["server"] != self.endpoint.api:
            cfg["clusters"][0]["cluster"]["server"] = self.endpoint.api
            write_atomic(path, yaml.safe_dump(cfg, sort_keys=False), 0o600)
