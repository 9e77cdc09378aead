"""SIGKILL of the lab daemon during a stream of writes: every acknowledged write survives the restart."""

from __future__ import annotations

import os
import signal
import threading
import time

import requests

from labkit import control
from labkit.backends.sim.backend import daemon_pid
from labkit.core.paths import LabPaths
from labkit.lab import Lab

from .test_semantics import Api


def _writer(api: Api, ns: str, prefix: str, acked: dict[str, tuple[str, int]], stop: threading.Event) -> None:
    """Create configmaps one after another, recording (uid, resourceVersion) of each 201."""
    i = 0
    while not stop.is_set():
        try:
            r = api("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": f"{prefix}-{i}"}})
        except requests.RequestException:
            return  # the daemon is gone
        if r.status_code == 201:
            acked[r.json()["metadata"]["name"]] = (r.json()["metadata"]["uid"],
                                                   int(r.json()["metadata"]["resourceVersion"]))
        i += 1


def _counter(api: Api, ns: str, acked: list[int], stop: threading.Event) -> None:
    """Read-modify-write one configmap; ``acked`` holds each value the server answered 200 for."""
    path = f"/api/v1/namespaces/{ns}/configmaps/counter"
    while not stop.is_set():
        try:
            cur = api("GET", path).json()
            cur["data"] = {"n": str(int((cur.get("data") or {}).get("n", "0")) + 1)}
            r = api("PUT", path, cur)
        except requests.RequestException:
            return
        if r.status_code == 200:
            acked.append(int(r.json()["data"]["n"]))


def test_sigkill_during_writes_keeps_every_acknowledged_write(lab_paths: LabPaths) -> None:
    control.up(lab_paths)
    api = Api(Lab.connect(home=lab_paths.home, start=False))
    ns = "durable"
    assert api("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).status_code == 201
    assert api("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "counter"}}).status_code == 201
    created: list[dict[str, tuple[str, int]]] = [{} for _ in range(3)]
    counted: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(Api(Lab.connect(home=lab_paths.home, start=False)), ns,
                                                      f"w{i}", created[i], stop)) for i in range(3)]
    threads.append(threading.Thread(target=_counter, args=(api, ns, counted, stop)))
    for t in threads:
        t.start()
    time.sleep(1.5)
    pid = daemon_pid(lab_paths)
    assert pid is not None and pid > 0
    os.kill(pid, signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(30)
    acked = {name: v for c in created for name, v in c.items()}
    assert len(acked) > 20 and counted, "the writers should have been acknowledged before the kill"

    control.up(lab_paths)
    api = Api(Lab.connect(home=lab_paths.home, start=False))
    listed = api("GET", f"/api/v1/namespaces/{ns}/configmaps").json()
    stored = {o["metadata"]["name"]: o for o in listed["items"]}
    lost = [name for name, (uid, _) in acked.items()
            if name not in stored or stored[name]["metadata"]["uid"] != uid]
    assert lost == []
    # the counter holds the last acknowledged value, or one more that committed as the daemon died
    assert int(stored["counter"]["data"]["n"]) in (max(counted), max(counted) + 1)
    newer = api("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "after"}}).json()
    assert int(newer["metadata"]["resourceVersion"]) > max(rv for _, rv in acked.values())
