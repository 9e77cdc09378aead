"""``prometheus.yml`` as Prometheus reads it: ``global``, ``scrape_configs`` (static and Kubernetes service
discovery, relabeling) and ``rule_files``, with Prometheus' defaults; a key the simulator does not implement is
refused by name, as a configuration error, never ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .scrape.relabel import RelabelConfig

DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
UNITS = (31536000, 604800, 86400, 3600, 60, 1, 0.001)
ROLES = ("pod", "endpoints", "service", "node")


class ConfigError(ValueError):
    """A configuration Prometheus would refuse (or one the simulator does not support), with its reason."""


def duration(text: Any, key: str) -> float:
    """Seconds of a Prometheus duration (``15s``, ``1m30s``, ``500ms``)."""
    m = DURATION.match(str(text))
    if not m or not str(text) or str(text) == "0":
        if str(text) == "0":
            return 0.0
        raise ConfigError(f'{key}: not a valid duration string: "{text}"')
    return sum(int(m.group(2 * i + 2)) * unit for i, unit in enumerate(UNITS) if m.group(2 * i + 2))


def _check_keys(section: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{where}: {', '.join(unknown)} is not supported by the labkit simulator "
                          f"(supported: {', '.join(sorted(allowed))})")


@dataclass(frozen=True)
class KubernetesSD:
    """One ``kubernetes_sd_configs`` entry: a role, optional namespaces; the lab's API server by default."""

    role: str
    namespaces: tuple[str, ...] = ()
    own_namespace: bool = False


@dataclass(frozen=True)
class StaticGroup:
    targets: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeConfig:
    job_name: str
    scrape_interval: float
    scrape_timeout: float
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: dict[str, list[str]] = field(default_factory=dict)
    honor_labels: bool = False
    honor_timestamps: bool = True
    static_configs: tuple[StaticGroup, ...] = ()
    kubernetes_sd_configs: tuple[KubernetesSD, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()
    bearer_token: str = ""
    basic_auth: tuple[str, str] | None = None
    insecure_skip_verify: bool = False
    sample_limit: int = 0
    ca_file: str = ""  # tls_config.ca_file: the CA that signs the targets' certificates
    password_file: str = ""  # basic_auth.password_file, read at each scrape

    def credentials(self) -> tuple[str, str] | None:
        """The basic auth user and password for a scrape now (the password file read again, as Prometheus does)."""
        if self.basic_auth is None or not self.password_file:
            return self.basic_auth
        try:
            password = Path(self.password_file).read_text().strip()
        except OSError as err:
            raise RuntimeError(f"unable to read basic auth password file {self.password_file}: "
                               f"{err.strerror}") from None
        return self.basic_auth[0], password


@dataclass(frozen=True)
class Config:
    scrape_interval: float = 60.0
    scrape_timeout: float = 10.0
    evaluation_interval: float = 60.0
    external_labels: dict[str, str] = field(default_factory=dict)
    scrape_configs: tuple[ScrapeConfig, ...] = ()
    rule_files: tuple[str, ...] = ()
    text: str = ""  # the YAML as loaded, for /api/v1/status/config
    base: Path = Path(".")  # relative rule files and credential files are relative to the config's folder

    def rule_paths(self) -> list[Path]:
        """The rule files the ``rule_files`` globs match, sorted as Prometheus loads them."""
        found: list[Path] = []
        for pattern in self.rule_files:
            p = Path(pattern)
            root, rel = (Path(p.anchor), str(p.relative_to(p.anchor))) if p.is_absolute() else (self.base, pattern)
            found.extend(sorted(root.glob(rel)))
        return found


GLOBAL_KEYS = {"scrape_interval", "scrape_timeout", "evaluation_interval", "external_labels"}
TOP_KEYS = {"global", "scrape_configs", "rule_files", "alerting"}
SCRAPE_KEYS = {"job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "params", "honor_labels",
               "honor_timestamps", "static_configs", "kubernetes_sd_configs", "relabel_configs",
               "metric_relabel_configs", "bearer_token", "bearer_token_file", "basic_auth", "authorization",
               "tls_config", "sample_limit", "follow_redirects", "enable_http2"}


def load(path: str | Path) -> Config:
    """Read and check a ``prometheus.yml``."""
    path = Path(path)
    return parse(path.read_text(), path.parent)


def parse(text: str, base: Path = Path(".")) -> Config:
    """Check ``prometheus.yml`` text as Prometheus does, with its defaults."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"parsing YAML: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError("the configuration is not a YAML mapping")
    _check_keys(doc, TOP_KEYS, "prometheus.yml")
    if doc.get("alerting"):
        raise ConfigError("alerting (Alertmanager) is not supported by the labkit simulator: "
                          "alerts are read from /api/v1/alerts")
    glob = doc.get("global") or {}
    _check_keys(glob, GLOBAL_KEYS, "global")
    interval = duration(glob.get("scrape_interval", "1m"), "global.scrape_interval")
    timeout = duration(glob["scrape_timeout"], "global.scrape_timeout") if "scrape_timeout" in glob \
        else min(10.0, interval)  # an unset timeout is the interval when that is shorter than 10 s
    if timeout > interval:
        raise ConfigError("global scrape timeout greater than scrape interval")
    jobs: list[ScrapeConfig] = []
    for raw in doc.get("scrape_configs") or []:
        job = _scrape_config(raw, interval, timeout, base)
        if any(j.job_name == job.job_name for j in jobs):
            raise ConfigError(f'found multiple scrape configs with job name "{job.job_name}"')
        jobs.append(job)
    return Config(interval, timeout, duration(glob.get("evaluation_interval", "1m"), "global.evaluation_interval"),
                  {str(k): str(v) for k, v in (glob.get("external_labels") or {}).items()}, tuple(jobs),
                  tuple(doc.get("rule_files") or ()), text, base)


def _scrape_config(raw: dict[str, Any], interval: float, timeout: float, base: Path) -> ScrapeConfig:
    if not isinstance(raw, dict) or not raw.get("job_name"):
        raise ConfigError("job_name is empty")
    name = str(raw["job_name"])
    _check_keys(raw, SCRAPE_KEYS, f"scrape_configs[{name}]")
    job_interval = duration(raw["scrape_interval"], "scrape_interval") if "scrape_interval" in raw else interval
    job_timeout = duration(raw["scrape_timeout"], "scrape_timeout") if "scrape_timeout" in raw \
        else min(timeout, job_interval)
    if job_timeout > job_interval:
        raise ConfigError(f'scrape timeout greater than scrape interval for scrape config with job name "{name}"')
    scheme = str(raw.get("scheme", "http"))
    if scheme not in ("http", "https"):
        raise ConfigError(f"unknown scrape scheme {scheme!r}")
    statics = tuple(StaticGroup(tuple(str(t) for t in g.get("targets") or ()),
                                {str(k): str(v) for k, v in (g.get("labels") or {}).items()})
                    for g in raw.get("static_configs") or ())
    sds: list[KubernetesSD] = []
    for sd in raw.get("kubernetes_sd_configs") or ():
        _check_keys(sd, {"role", "namespaces"}, f"scrape_configs[{name}].kubernetes_sd_configs")
        if sd.get("role") not in ROLES:
            raise ConfigError(f"role {sd.get('role')!r}: the labkit simulator supports the kubernetes_sd roles "
                              f"{', '.join(ROLES)}")
        ns = sd.get("namespaces") or {}
        _check_keys(ns, {"names", "own_namespace"}, f"scrape_configs[{name}].kubernetes_sd_configs.namespaces")
        sds.append(KubernetesSD(sd["role"], tuple(ns.get("names") or ()), bool(ns.get("own_namespace"))))
    token = str(raw.get("bearer_token", ""))
    if raw.get("bearer_token_file"):
        token = (base / str(raw["bearer_token_file"])).read_text().strip()
    auth = raw.get("authorization") or {}
    if auth:
        _check_keys(auth, {"type", "credentials", "credentials_file"}, f"scrape_configs[{name}].authorization")
        token = str(auth.get("credentials") or (base / auth["credentials_file"]).read_text().strip())
    basic, password_file = _basic_auth(raw.get("basic_auth"), name, base)
    tls = raw.get("tls_config") or {}
    _check_keys(tls, {"insecure_skip_verify", "ca_file"}, f"scrape_configs[{name}].tls_config")
    return ScrapeConfig(
        name, job_interval, job_timeout, str(raw.get("metrics_path", "/metrics")), scheme,
        {str(k): [str(x) for x in v] for k, v in (raw.get("params") or {}).items()},
        bool(raw.get("honor_labels", False)), bool(raw.get("honor_timestamps", True)), statics, tuple(sds),
        tuple(RelabelConfig.parse(r) for r in raw.get("relabel_configs") or ()),
        tuple(RelabelConfig.parse(r) for r in raw.get("metric_relabel_configs") or ()),
        token, basic,
        bool(tls.get("insecure_skip_verify")), int(raw.get("sample_limit", 0)),
        str(base / tls["ca_file"]) if tls.get("ca_file") else "", password_file)


def _basic_auth(basic: Any, job: str, base: Path) -> tuple[tuple[str, str] | None, str]:
    """``basic_auth``'s user and inline password, and its ``password_file`` (relative to the configuration's
    folder; read at each scrape, as Prometheus reads it); never a password and a file, as Prometheus checks."""
    if not basic:
        return None, ""
    _check_keys(basic, {"username", "password", "password_file"}, f"scrape_configs[{job}].basic_auth")
    if basic.get("password") and basic.get("password_file"):
        raise ConfigError("at most one of basic_auth password & password_file must be configured")
    password_file = str(base / str(basic["password_file"])) if basic.get("password_file") else ""
    return (str(basic.get("username", "")), str(basic.get("password") or "")), password_file
