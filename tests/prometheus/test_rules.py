"""The chapter's rule file evaluated by the sim, judged by the real Prometheus' rule unit tester
(``promtool test rules``): the same input series, the same evaluation times; the error-ratio alert goes pending,
fires after ``for`` with the templated annotations promtool expects, and resolves; the recording rules and the
``ALERTS`` series; rule files refused as Prometheus refuses them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.core.checkout import Checkout
from labkit.prometheus.config import ConfigError
from labkit.prometheus.promql import Engine
from labkit.prometheus.rules import RuleManager, format_value, load_rules
from labkit.prometheus.tsdb import Matcher, Storage, is_stale

RULES = Checkout.find().root / "manifests" / "prometheus" / "rules" / "shop.yml"
STEP = 15
SERIES = {
    '{namespace="shop",app="catalog",pod="c-1",status="200"}': "0+60x30",
    '{namespace="shop",app="catalog",pod="c-1",status="500"}': "0x8 12+12x8 108x12",
}
FIRING = {"labels": {"alertname": "ShopHighErrorRatio", "namespace": "shop", "app": "catalog",
                     "severity": "warning"},
          "annotations": {"summary": "catalog answers 16.67% of its requests with 5xx",
                          "description": "More than 5% of shop/catalog's requests failed over 30 seconds."}}


def expand_values(text: str) -> list[float]:
    """promtool's series notation (``a+bxn``, ``axn``, plain numbers)."""
    out: list[float] = []
    for part in text.split():
        m = re.fullmatch(r"(-?[\d.]+)(?:([+-][\d.]+))?x(\d+)", part)
        if m is None:
            out.append(float(part))
            continue
        start, delta, n = float(m.group(1)), float(m.group(2) or 0), int(m.group(3))
        out.extend(start + delta * i for i in range(n + 1))
    return out


def promtool_file(folder: Path) -> Path:
    test = {"rule_files": [str(RULES)], "evaluation_interval": f"{STEP}s", "tests": [{
        "interval": f"{STEP}s",
        "input_series": [{"series": f"http_requests_total{labels}", "values": values}
                         for labels, values in SERIES.items()],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "ShopHighErrorRatio",
             "exp_alerts": [{"exp_labels": {k: v for k, v in FIRING["labels"].items() if k != "alertname"},
                             "exp_annotations": FIRING["annotations"]}]},
            {"eval_time": "6m", "alertname": "ShopHighErrorRatio", "exp_alerts": []}]}]}
    path = folder / "shop_test.yml"
    path.write_text(yaml.safe_dump(test))
    return path


def test_promtool_agrees_with_the_expectation(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/test.sh installs prometheus)")
    run = subprocess.run([promtool, "test", "rules", str(promtool_file(tmp_path))], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_sim_evaluates_the_shop_rules_as_promtool(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data", 86400 * 365)
    samples = []
    for labels, values in SERIES.items():
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        samples.extend(({**pairs, "__name__": "http_requests_total"}, i * STEP * 1000, v)
                       for i, v in enumerate(expand_values(values)))
    storage.append(sorted(samples, key=lambda s: s[1]))
    groups = load_rules(RULES, 60)
    manager = RuleManager(groups, Engine(storage, lookback=300), storage)
    group = groups[0]
    states: dict[int, list[dict[str, object]]] = {}
    for i in range(0, 6 * 60 // STEP + 1):
        manager.evaluate(group, float(i * STEP))
        states[i * STEP] = [a.api() for a in manager.alerts()]
    alert_rule = next(r for r in group.rules if r.kind == "alerting")
    assert alert_rule.health == "ok", alert_rule.last_error
    first = min(t for t, alerts in states.items() if alerts)
    assert [a["state"] for a in states[first]] == ["pending"]  # for: 15s
    assert [a["state"] for a in states[first + STEP]] == ["firing"]
    at3m = states[180]
    assert [(a["state"], a["labels"], a["annotations"]) for a in at3m] == \
        [("firing", FIRING["labels"], FIRING["annotations"])]
    assert states[360] == []  # resolved once the 5xx stopped for 30 s
    alerts_series = storage.select([Matcher("__name__", "=", "ALERTS")], 0, 2**62)
    assert {s.labels["alertstate"] for s in alerts_series} == {"pending", "firing"}
    assert all(is_stale(s.values[-1]) for s in alerts_series)  # both ended
    rate = storage.select([Matcher("__name__", "=", "app:http_requests:rate30s")], 180_000, 180_000)
    assert rate and rate[0].labels == {"__name__": "app:http_requests:rate30s", "namespace": "shop", "app": "catalog"}
    assert rate[0].values[0] == pytest.approx(4.8)
    api = group.api()
    assert [r["type"] for r in api["rules"]] == ["recording", "recording", "alerting"]
    assert api["rules"][2]["duration"] == 15 and api["rules"][2]["state"] == "inactive"
    storage.close()


@pytest.mark.parametrize(("text", "message"), [
    ("groups: [{name: g, rules: [{record: r, alert: a, expr: up}]}]", "one of 'record' or 'alert'"),
    ("groups: [{name: g, rules: [{alert: a, expr: 'up{'}]}]", "could not parse expression"),
    ("groups: [{name: g, rules: [{record: r, expr: up, for: 1m}]}]", "invalid field 'for'"),
    ("groups: [{name: g, rules: []}, {name: g, rules: []}]", "repeated in the same file"),
    ("groups: [{name: g, rules: [{alert: a, expr: up, severity: x}]}]", "field severity not found"),
])
def test_bad_rule_files_refused(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_rules(path, 60)
    promtool = shutil.which("promtool")
    if promtool:  # the real checker refuses it too
        assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                              timeout=60).returncode != 0


def test_alert_value_as_go_formats_it() -> None:
    assert [format_value(v) for v in (1, 0.25, 123.0, 1e-5, -3.5)] == \
        ["1e+00", "2.5e-01", "1.23e+02", "1e-05", "-3.5e+00"]


def test_a_recorded_series_that_stops_is_marked_stale(tmp_path: Path) -> None:
    """A pod replaced: its counters stop at 2m, so from 2m30s the recording rules return no series for its app.
    As Prometheus' rule groups do, the recorded series ends with a staleness marker and is gone from instant
    queries at once, not 5 minutes later (an alert on it resolves when the errors stop). promtool agrees."""
    values = "0+60x8"  # 0..2m
    storage = Storage(tmp_path / "data", 86400 * 365)
    storage.append([({"__name__": "http_requests_total", "namespace": "shop", "app": "old", "status": "200"},
                     i * STEP * 1000, v) for i, v in enumerate(expand_values(values))])
    groups = load_rules(RULES, 60)
    engine = Engine(storage, lookback=300)
    manager = RuleManager(groups, engine, storage)
    for i in range(0, 4 * 60 // STEP + 1):
        manager.evaluate(groups[0], float(i * STEP))
    recorded = storage.select([Matcher("__name__", "=", "app:http_requests:rate30s")], 0, 2**62)
    assert len(recorded) == 1 and is_stale(recorded[0].values[-1])
    assert engine.instant("app:http_requests:rate30s", 60.0)["result"]
    assert engine.instant("app:http_requests:rate30s", 180.0)["result"] == []
    storage.close()
    promtool = shutil.which("promtool")
    if promtool is None:
        return
    test = {"rule_files": [str(RULES)], "evaluation_interval": f"{STEP}s", "tests": [{
        "interval": f"{STEP}s",
        "input_series": [{"series": 'http_requests_total{namespace="shop",app="old",status="200"}', "values": values}],
        "promql_expr_test": [
            {"expr": "app:http_requests:rate30s", "eval_time": "1m",
             "exp_samples": [{"labels": 'app:http_requests:rate30s{namespace="shop",app="old"}', "value": 4}]},
            {"expr": "app:http_requests:rate30s", "eval_time": "3m", "exp_samples": []}]}]}
    (tmp_path / "stale_test.yml").write_text(yaml.safe_dump(test))
    run = subprocess.run([promtool, "test", "rules", str(tmp_path / "stale_test.yml")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
