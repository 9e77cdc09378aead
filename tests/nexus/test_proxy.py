"""Nexus' proxy behaviour, proven by the upstream's own request counts: fetch once, metadataMaxAge re-validation,
the negative cache, the outage (auto-block, cached content still served), single-flight, and a restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .conftest import RunningNexus, pip
from .upstream import TinyIndex, make_wheel

DAY = 24 * 3600


def _status(nexus: RunningNexus, name: str) -> dict:
    rows = nexus.session(auth=True).get(f"{nexus.url}/service/rest/internal/ui/repositories/details").json()
    return next(r for r in rows if r["name"] == name)["status"]


def test_metadata_is_revalidated_after_metadata_max_age(fresh_nexus: RunningNexus, tiny_index: TinyIndex) -> None:
    make_wheel(tiny_index.folder, "alpha", "1.0")
    fresh_nexus.add_proxy("tiny", tiny_index, proxy={"metadataMaxAge": 60})
    page = fresh_nexus.index("tiny") + "alpha/"
    s = fresh_nexus.session()
    assert "alpha-1.0-py3-none-any.whl" in s.get(page).text
    make_wheel(tiny_index.folder, "alpha", "2.0")  # published upstream meanwhile
    fresh_nexus.clock.offset = 59 * 60
    assert "alpha-2.0" not in s.get(page).text and tiny_index.requests["/simple/alpha/"] == 1
    fresh_nexus.clock.offset = 61 * 60
    assert "alpha-2.0-py3-none-any.whl" in s.get(page).text and tiny_index.requests["/simple/alpha/"] == 2


def test_a_404_is_remembered_for_the_negative_cache_ttl(fresh_nexus: RunningNexus, tiny_index: TinyIndex) -> None:
    fresh_nexus.add_proxy("tiny", tiny_index, negativeCache={"timeToLive": 10})
    page = fresh_nexus.index("tiny") + "beta/"
    s = fresh_nexus.session()
    assert [s.get(page).status_code for _ in range(3)] == [404, 404, 404]
    assert tiny_index.requests["/simple/beta/"] == 1
    make_wheel(tiny_index.folder, "beta", "1.0")
    fresh_nexus.clock.offset = 11 * 60
    assert s.get(page).status_code == 200 and tiny_index.requests["/simple/beta/"] == 2


def test_upstream_outage_serves_what_is_cached_and_blocks_the_remote(fresh_nexus: RunningNexus,
                                                                     tmp_path: Path) -> None:
    """The stand-in upstream stops: cached packages still download with pip, an uncached one fails saying why,
    and the repository shows its remote auto-blocked; back on, it is available again."""
    nexus = fresh_nexus
    pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "warm"), "idna")
    assert _status(nexus, "pypi-proxy")["description"] == "Online - Remote Available"
    nexus.run(nexus.component.switch_upstream(False))
    nexus.clock.offset = 2 * DAY  # metadata is due for re-validation: the remote is asked, and is down
    pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "cached"), "idna")
    assert [p.name for p in (tmp_path / "cached").iterdir()] == [p.name for p in (tmp_path / "warm").iterdir()]
    status = _status(nexus, "pypi-proxy")
    assert status["description"] == "Online - Remote Automatically Blocked and Unavailable"
    assert "Connect" in status["reason"] or "connect" in status["reason"]
    failed = pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "cold"), "packaging", check=False)
    assert failed.returncode != 0 and "packaging" in failed.stderr
    direct = nexus.session().get(nexus.index("pypi-proxy") + "packaging/")
    assert direct.status_code == 404 and direct.reason == "Not Found (remote unavailable and not cached)"
    assert "auto-blocked and unavailable" in direct.text and "not stored" in direct.text
    health = nexus.run(nexus.component.health())
    assert "STAND-IN upstream" in health.detail and "remote blocked: pypi-proxy" in health.detail
    nexus.run(nexus.component.switch_upstream(True))
    pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "back"), "packaging")
    assert _status(nexus, "pypi-proxy")["description"] == "Online - Remote Available"


def test_manually_blocked_remote_is_not_asked(fresh_nexus: RunningNexus, tiny_index: TinyIndex) -> None:
    make_wheel(tiny_index.folder, "gamma", "1.0")
    fresh_nexus.add_proxy("tiny", tiny_index, httpClient={"blocked": True})
    r = fresh_nexus.session().get(fresh_nexus.index("tiny") + "gamma/")
    assert r.status_code == 404 and "manually blocked" in r.text and tiny_index.requests == {}
    assert _status(fresh_nexus, "tiny")["description"] == "Online - Remote Manually Blocked and Unavailable"


def test_concurrent_requests_for_a_cold_file_fetch_it_once(fresh_nexus: RunningNexus, tiny_index: TinyIndex,
                                                           tmp_path: Path) -> None:
    wheel = make_wheel(tiny_index.folder, "delta", "1.0")
    fresh_nexus.add_proxy("tiny", tiny_index)
    s = fresh_nexus.session()
    assert s.get(fresh_nexus.index("tiny") + "delta/").status_code == 200
    tiny_index.delay = 0.5  # every request stays in flight long enough for the others to arrive
    url = f"{fresh_nexus.url}/repository/tiny/packages/delta/1.0/{wheel.name}"

    def fetch(_: int) -> bytes:
        with fresh_nexus.session() as own:
            return own.get(url, timeout=60).content

    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(fetch, range(20)))
    assert all(b == wheel.read_bytes() for b in bodies)
    assert tiny_index.requests[f"/files/{wheel.name}"] == 1
    metrics = fresh_nexus.session(auth=True).get(f"{fresh_nexus.url}/service/metrics/prometheus").text
    upstream_bytes = wheel.stat().st_size + len(tiny_index.answer("/simple/delta/")[0] or b"")
    assert f'nexus_repository_upstream_bytes_total{{repository="tiny"}} {upstream_bytes}' in metrics
    assert 'nexus_repository_requests_total{repository="tiny"} 21' in metrics
    assert f'nexus_repository_stored_bytes{{repository="tiny"}} {upstream_bytes}' in metrics
    assert 'nexus_repository_assets{repository="tiny"} 2' in metrics
    families = {f.name: f for f in text_string_to_metric_families(metrics)}  # Prometheus' own parser reads it
    assert families["nexus_repository_cache_misses"].type == "counter"


def test_a_restart_loses_nothing(fresh_nexus: RunningNexus, tiny_index: TinyIndex, tmp_path: Path) -> None:
    make_wheel(tiny_index.folder, "epsilon", "1.0")
    fresh_nexus.add_proxy("tiny", tiny_index)
    pip("download", "--index-url", fresh_nexus.index("tiny"), "-d", str(tmp_path / "a"), "epsilon")
    password = fresh_nexus.password
    before = dict(tiny_index.requests)
    fresh_nexus.restart()
    tiny_index.stop()  # only what Nexus stored can answer now
    pip("download", "--index-url", fresh_nexus.index("tiny"), "-d", str(tmp_path / "b"), "epsilon")
    assert dict(tiny_index.requests) == before and fresh_nexus.password == password
    names = [r["name"] for r in fresh_nexus.session().get(f"{fresh_nexus.url}/service/rest/v1/repositories").json()]
    assert "tiny" in names and "pypi-group" in names
