"""The Nexus chapter's goals, measured on Nexus servers of their own (``python -m labkit.nexus`` in temporary
homes, fresh for every cold run):

* a warm ``pip install`` of the shop's requirements (``apps/catalog/requirements.txt``) into an empty venv through
  ``pypi-group`` against the cold one, a fresh Nexus each time (goal: warm at least 3x faster). The upstream is this
  machine's (pip's configured index, e.g. PyPI) unless ``--offline``: the lab's stand-in, the wheelhouse on
  loopback, has no network latency, so there the cache has little to save;
* a cached file served by Nexus (``/repository/pypi-proxy/packages/…``) against the same file read from the
  wheelhouse on disk by a plain HTTP server (``python -m http.server``), both on loopback, sequential GETs
  (goal: Nexus at least 0.8x the throughput);
* 20 concurrent ``pip download`` of one package nobody fetched yet, through a fresh Nexus on the stand-in
  upstream, which counts the requests it answers (goal: exactly one upstream fetch per file).

Prints one table. Usage: python benchmarks/nexus.py [--runs 3] [--offline] [--gets 200] [--pips 20]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.core.checkout import Checkout
from labkit.nexus import piplog

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CONCURRENT_PACKAGE = "protobuf"  # the wheelhouse's largest file: the longest window for requests to overlap


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m labkit.nexus`` in a home of its own, until ``stop``; ``info`` is the JSON line it printed."""

    def __init__(self, offline: bool, maven: str = "") -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="labkit-nexus-bench-")
        home, port = Path(self.tmp.name), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} if not offline else dict(os.environ)
        if maven:  # Nexus uses the machine's upstream only when both remotes answer; the benchmark needs PyPI's
            env["LABKIT_NEXUS_MAVEN_REMOTE"] = maven
        self.proc = subprocess.Popen([sys.executable, "-m", "labkit.nexus", "--home", str(home), "--listen",
                                      f"127.0.0.1:{port}", *(["--offline"] if offline else [])],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise SystemExit("python -m labkit.nexus did not start")
        self.info = json.loads(line)
        self.url = self.info["url"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


def install_once(requirements: Path, index: str) -> float:
    with tempfile.TemporaryDirectory(prefix="labkit-venv-") as tmp:
        run = piplog.install(requirements, index, Path(tmp) / "venv")
    if not run.ok:
        raise SystemExit(f"pip install through {index} failed:\n{run.output[-2000:]}")
    return run.seconds


class HttpServer:
    """``python -m http.server`` of ``folder`` on loopback, until ``stop``."""

    def __init__(self, folder: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", self.url.rpartition(":")[2], "--bind",
                                      "127.0.0.1", "--directory", str(folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                OPENER.open(self.url + "/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def cold_warm(requirements: Path, runs: int, offline: bool) -> tuple[list[float], list[float], str]:
    """Per run: a fresh Nexus, a cold install, then a warm one. Its Maven remote, which no install uses, is the
    Maven fixture served on loopback, so that a machine that reaches PyPI but not Maven Central measures PyPI."""
    cold, warm, upstream = [], [], ""
    maven = HttpServer(Path(__file__).resolve().parent.parent / "labkit" / "nexus" / "fixture" / "maven2")
    try:
        for _ in range(runs):
            c, w, upstream = _cold_warm_once(requirements, offline, maven.url + "/")
            cold.append(c)
            warm.append(w)
    finally:
        maven.stop()
    return cold, warm, upstream


def _cold_warm_once(requirements: Path, offline: bool, maven: str) -> tuple[float, float, str]:
    server = Server(offline, maven)
    try:
        index = server.info["pypi"]
        return (install_once(requirements, index), install_once(requirements, index),
                server.info["upstream"]["source"])
    finally:
        server.stop()


def throughput(url: str, gets: int) -> float:
    """MB/s of ``gets`` sequential GETs of ``url``."""
    size, started = 0, time.monotonic()
    for _ in range(gets):
        with OPENER.open(url, timeout=30) as r:
            size += len(r.read())
    return size / (time.monotonic() - started) / 1e6


def served_vs_disk(gets: int) -> tuple[float, float, str]:
    """(Nexus MB/s, http.server MB/s, the file) for the wheelhouse's largest file, cached in Nexus first."""
    wheelhouse = Checkout.find().wheelhouse
    wheel = max(wheelhouse.glob("*.whl"), key=lambda p: p.stat().st_size)
    project = piplog.normalize(wheel.name.split("-")[0])
    server = Server(offline=True)
    disk = HttpServer(wheelhouse)
    try:
        with tempfile.TemporaryDirectory() as tmp:  # cache it: one pip download through the proxy
            run = piplog.run_pip("download", ["--no-deps", "--dest", tmp, f"{project}"], server.info["pypi"])
            if not run.ok:
                raise SystemExit(run.output[-2000:])
        page = OPENER.open(f"{server.url}/repository/pypi-proxy/simple/{project}/", timeout=30).read().decode()
        href = next(part.split('"')[0] for part in page.split('href="')[1:] if wheel.name in part)
        cached = href if href.startswith("http") else urllib.parse.urljoin(
            f"{server.url}/repository/pypi-proxy/simple/{project}/", href)
        cached = cached.split("#")[0]
        nexus = throughput(cached, gets)
        plain = throughput(f"{disk.url}/{wheel.name}", gets)
        return nexus, plain, f"{wheel.name} ({wheel.stat().st_size / 1e3:.0f} kB)"
    finally:
        disk.stop()
        server.stop()


def concurrent_pips(pips: int) -> tuple[dict[str, int], int]:
    """(the stand-in's request count per path for the package, pips that succeeded)."""
    server = Server(offline=True)
    try:
        index = server.info["pypi"]
        with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(pips) as pool:
            runs = list(pool.map(lambda i: piplog.run_pip("download", ["--no-deps", "--dest", f"{tmp}/{i}",
                                                                       CONCURRENT_PACKAGE], index), range(pips)))
        counts = json.loads(OPENER.open(server.info["upstream"]["stand_in_url"] + "/_stand-in/requests",
                                        timeout=30).read())
        return {p: n for p, n in counts.items() if CONCURRENT_PACKAGE in p}, sum(r.ok for r in runs)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--offline", action="store_true", help="the stand-in upstream for the install runs too")
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--pips", type=int, default=20)
    args = parser.parse_args()
    requirements = Checkout.find().root / "apps" / "catalog" / "requirements.txt"
    rows = []
    cold, warm, upstream = cold_warm(requirements, args.runs, args.offline)
    ratio = statistics.median(cold) / statistics.median(warm)
    each = "runs: " + ", ".join(f"{x:.2f}" for x in cold)
    rows.append(("pip install, cold (median s)", f"{statistics.median(cold):.2f}", each, ""))
    rows.append(("pip install, warm (median s)", f"{statistics.median(warm):.2f}", f"upstream: {upstream}", ""))
    rows.append(("warm speed-up", f"{ratio:.2f}x", "goal >= 3x", "PASS" if ratio >= 3 else "FAIL"))
    nexus, plain, what = served_vs_disk(args.gets)
    rows.append(("cached file from Nexus (MB/s)", f"{nexus:.1f}", what, ""))
    rows.append(("same file, http.server from disk (MB/s)", f"{plain:.1f}", f"{args.gets} sequential GETs", ""))
    rows.append(("Nexus / disk", f"{nexus / plain:.2f}x", "goal >= 0.8x", "PASS" if nexus / plain >= 0.8 else "FAIL"))
    counts, ok = concurrent_pips(args.pips)
    files = {p: n for p, n in counts.items() if p.startswith("/files/")}
    single = bool(files) and all(n == 1 for n in files.values())
    rows.append((f"{args.pips} concurrent pip download {CONCURRENT_PACKAGE}", f"{ok}/{args.pips} ok",
                 ", ".join(f"{p}: {n}" for p, n in sorted(counts.items())), ""))
    rows.append(("upstream fetches per file", ", ".join(str(n) for n in files.values()) or "none",
                 "goal: exactly 1", "PASS" if single else "FAIL"))
    width = max(len(r[0]) for r in rows)
    for name, value, detail, verdict in rows:
        print(f"{name:<{width}}  {value:>12}  {verdict:<4}  {detail}")


if __name__ == "__main__":
    main()
