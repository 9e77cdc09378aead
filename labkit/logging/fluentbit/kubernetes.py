"""The ``kubernetes`` filter: reads namespace, pod, container and container id from the tag (the
``/var/log/containers`` file name), fetches the pod from the API server with a bearer token (cached, for
``kube_meta_cache_ttl`` seconds or for good), and adds the ``kubernetes`` map; ``merge_log`` parses the ``log``
(JSON, or the parser a ``fluentbit.io/parser`` annotation names), ``fluentbit.io/exclude`` drops a pod's records."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .config import ConfigError, Section
from .parsers import Parser, ruby_regex
from .paths import PathMap

Record = dict[str, Any]
DEFAULT_URL = "https://kubernetes.default.svc:443"
DEFAULT_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
DEFAULT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
TAG_REGEX = (r"(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_"
             r"(?<namespace_name>[^_]+)_(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})\.log$")
MISS_TTL = 2.0  # seconds a pod the API server did not have is not asked for again


class ApiAccess:
    """Where the API server is and how to authenticate: the filter's settings, else the node's kubeconfig."""

    def __init__(self, s: Section, paths: PathMap, kubeconfig: Path | None) -> None:
        cfg: dict[str, Any] = {}
        if kubeconfig is not None and kubeconfig.exists():
            cfg = yaml.safe_load(kubeconfig.read_text()) or {}
        ctx_name = cfg.get("current-context")
        ctx = next((c["context"] for c in cfg.get("contexts") or [] if c["name"] == ctx_name), {})
        cluster = next((c["cluster"] for c in cfg.get("clusters") or [] if c["name"] == ctx.get("cluster")), {})
        user = next((u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")), {})
        url = s.get("kube_url", DEFAULT_URL)
        self.url = cluster.get("server", url) if url == DEFAULT_URL and cluster else url
        token_file = paths.real(s.get("kube_token_file", DEFAULT_TOKEN))
        self.token = token_file.read_text().strip() if token_file.exists() else user.get("token", "")
        ca_file = paths.real(s.get("kube_ca_file", DEFAULT_CA))
        self.ssl: ssl.SSLContext | bool = False
        if self.url.startswith("https"):
            if not s.flag("tls.verify", True):
                self.ssl = False
            elif ca_file.exists():
                self.ssl = ssl.create_default_context(cafile=str(ca_file))
            elif cluster.get("certificate-authority-data"):
                pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
                self.ssl = ssl.create_default_context(cadata=pem)
            else:
                self.ssl = ssl.create_default_context()
        if not self.token:
            raise ConfigError(f"[filter:kubernetes] no token: {s.get('kube_token_file', DEFAULT_TOKEN)} does not "
                              "exist and the node has no kubeconfig with a token")


class KubernetesFilter:
    """One ``[FILTER] Name kubernetes``."""

    def __init__(self, s: Section, paths: PathMap, kubeconfig: Path | None,
                 parsers: dict[str, Parser]) -> None:
        self.access = ApiAccess(s, paths, kubeconfig)
        self.prefix = s.get("kube_tag_prefix", "kube.var.log.containers.")
        regex_parser = s.get("regex_parser")
        if regex_parser and regex_parser not in parsers:
            raise ConfigError(f"[filter:kubernetes] regex_parser '{regex_parser}' is not registered")
        self.tag_regex = parsers[regex_parser].regex if regex_parser else ruby_regex(TAG_REGEX)
        self.merge = s.flag("merge_log")
        self.merge_key = s.get("merge_log_key")
        self.trim = s.flag("merge_log_trim", True)
        self.keep_log = s.flag("keep_log", True)
        self.labels = s.flag("labels", True)
        self.annotations = s.flag("annotations", True)
        self.k8s_parser = s.flag("k8s-logging.parser")
        self.k8s_exclude = s.flag("k8s-logging.exclude")
        self.ttl = s.number("kube_meta_cache_ttl", 0) if s.get("kube_meta_cache_ttl") else 0.0
        self.parsers = parsers
        self.cache: dict[tuple[str, str], tuple[float, Record | None]] = {}
        self.api_calls = 0
        self._session: aiohttp.ClientSession | None = None

    def _ids(self, tag: str) -> dict[str, str] | None:
        if not tag.startswith(self.prefix):
            return None
        assert self.tag_regex is not None
        m = self.tag_regex.search(tag[len(self.prefix):])
        return {k: v for k, v in m.groupdict().items() if v is not None} if m else None

    def _fresh(self, key: tuple[str, str], now: float) -> bool:
        hit = self.cache.get(key)
        if hit is None:
            return False
        expires, pod = hit
        return now < expires if (pod is None or self.ttl) else True

    async def prepare(self, events: list[tuple[str, float, Record]]) -> None:
        """Fetches the pods of these records that the cache does not hold."""
        now = time.monotonic()
        wanted = set()
        for tag, _, _ in events:
            ids = self._ids(tag)
            if ids is not None and not self._fresh((ids["namespace_name"], ids["pod_name"]), now):
                wanted.add((ids["namespace_name"], ids["pod_name"]))
        if wanted:
            await asyncio.gather(*(self._fetch(ns, pod) for ns, pod in wanted))

    async def _fetch(self, ns: str, pod: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        url = f"{self.access.url.rstrip('/')}/api/v1/namespaces/{ns}/pods/{pod}"
        self.api_calls += 1
        found: Record | None = None
        try:
            async with self._session.get(url, ssl=self.access.ssl,
                                         headers={"Authorization": f"Bearer {self.access.token}"}) as r:
                if r.status == 200:
                    found = await r.json()
        except (aiohttp.ClientError, TimeoutError):
            found = None
        now = time.monotonic()
        self.cache[(ns, pod)] = (now + (self.ttl if found is not None else MISS_TTL), found)

    def __call__(self, tag: str, ts: float, rec: Record) -> list[tuple[float, Record]]:
        ids = self._ids(tag)
        if ids is None:
            return [(ts, rec)]
        pod = (self.cache.get((ids["namespace_name"], ids["pod_name"])) or (0.0, None))[1]
        if pod is None:
            return [(ts, rec)]
        meta = pod.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        container = ids["container_name"]
        if self.k8s_exclude and (annotations.get(f"fluentbit.io/exclude-{container}")
                                 or annotations.get("fluentbit.io/exclude", "")).lower() == "true":
            return []
        rec = dict(rec)
        if self.merge and isinstance(rec.get("log"), str):
            self._merge(rec, annotations, container)
        rec["kubernetes"] = self._meta(pod, ids)
        return [(ts, rec)]

    def _merge(self, rec: Record, annotations: dict[str, str], container: str) -> None:
        text = rec["log"].rstrip() if self.trim else rec["log"]
        parsed: Any = None
        stream = rec.get("stream", "")
        name = (annotations.get(f"fluentbit.io/parser_{stream}-{container}")
                or annotations.get(f"fluentbit.io/parser-{container}")
                or annotations.get("fluentbit.io/parser")) if self.k8s_parser else None
        if name and name in self.parsers:
            result = self.parsers[name].parse(text)
            parsed = result[0] if result else None
        elif text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        if not isinstance(parsed, dict):
            return
        if self.merge_key:
            rec[self.merge_key] = parsed
        else:
            rec.update(parsed)
        if not self.keep_log:
            rec.pop("log", None)

    def _meta(self, pod: Record, ids: dict[str, str]) -> Record:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        out: Record = {"pod_name": ids["pod_name"], "namespace_name": ids["namespace_name"],
                       "pod_id": meta.get("uid", "")}
        if self.labels and meta.get("labels"):
            out["labels"] = meta["labels"]
        if self.annotations and meta.get("annotations"):
            out["annotations"] = meta["annotations"]
        out["host"] = spec.get("nodeName", "")
        if status.get("podIP"):
            out["pod_ip"] = status["podIP"]
        out["container_name"] = ids["container_name"]
        out["docker_id"] = ids["docker_id"]
        statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
        st = next((c for c in statuses if c.get("name") == ids["container_name"]), None)
        if st is not None:
            if st.get("imageID"):
                out["container_hash"] = st["imageID"]
            out["container_image"] = st.get("image", "")
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


