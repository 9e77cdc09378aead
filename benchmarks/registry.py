"""The lab registry side by side with Debian's ``docker-registry`` (the reference distribution server).

Both run as separate processes on 127.0.0.1 in one temporary folder, and the same client
(labkit.registry.client, one keep-alive connection) drives both with the same workload: push and
pull of large blobs (MB/s; pulls verified into a file, and read raw), push and pull of many small
blobs (blobs/s), and HEAD latency.
The lab registry runs with Harbor's auth on (a robot account of a private project; the client holds a bearer
token, as docker would); the reference runs without auth. Prints a table with the ratio lab/reference (goal >= 0.8).
Usage: python benchmarks/registry.py [--big-mb 50] [--big-count 3] [--small 200] [--heads 500] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.core.procs import terminate
from labkit.images.client import RegistryClient, sha256_digest

REFERENCE = shutil.which("docker-registry")
REFERENCE_CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            opener.open(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # answering (401 is an answer)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, grace=10)


@contextmanager
def lab_registry(folder: Path) -> Iterator[RegistryClient]:
    proc = subprocess.Popen([sys.executable, "-m", "labkit.registry", "--home", str(folder / "lab-home")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        endpoints = json.loads(proc.stdout.readline() or "{}")
        if "url" not in endpoints:
            raise RuntimeError("the lab registry did not start")
        yield RegistryClient(endpoints["url"], *harbor_robot(endpoints["api"], endpoints["user"],
                                                            endpoints["password"]))
    finally:
        stop(proc)


def harbor_robot(api: str, user: str, password: str) -> tuple[str, str]:
    """A private Harbor project ``bench`` and a robot account that may push and pull there: the credentials CI
    uses, so Harbor's auth is in the path (a private project: no anonymous shortcut)."""
    import requests

    auth = (user, password)
    requests.post(f"{api}/projects", auth=auth, timeout=10,
                  json={"project_name": "bench", "metadata": {"public": "false"}}).raise_for_status()
    robot = requests.post(f"{api}/robots", auth=auth, timeout=10, json={
        "name": "bench", "duration": -1, "level": "project", "permissions": [
            {"kind": "project", "namespace": "bench", "access": [{"resource": "repository", "action": "push"},
                                                                 {"resource": "repository", "action": "pull"}]}]})
    robot.raise_for_status()
    return robot.json()["name"], robot.json()["secret"]


@contextmanager
def reference_registry(folder: Path) -> Iterator[RegistryClient]:
    assert REFERENCE is not None
    port = free_port()
    config = folder / "reference.yml"
    config.write_text(REFERENCE_CONFIG.format(root=folder / "reference-data", port=port))
    proc = subprocess.Popen([REFERENCE, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc)
        yield RegistryClient(f"http://127.0.0.1:{port}")
    finally:
        stop(proc)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drain(client: RegistryClient, repo: str, digest: str) -> None:
    """GET a blob and throw the bytes away: what the server and loopback can deliver, no client hashing."""
    raw = client.request("GET", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull", stream=True).raw
    assert raw is not None
    while raw.read(1 << 20):
        pass


def measure(client: RegistryClient, big: list[Path], small: list[bytes], heads: int, scratch: Path) -> dict[str, float]:
    """The workload; returns metric -> value (higher is better except latency)."""
    repo = "bench/app"
    client.push_blob(repo, b"warm-up", check=False)  # connection and token, outside the timings
    big_digests = [sha256_digest(p.read_bytes()) for p in big]
    os.sync()  # start from clean page cache state: the disk's writeback throttling hits whoever runs second
    mb = big[0].stat().st_size / 1e6
    push_big = [timed(lambda p=p, d=d: client.push_blob(repo, p, digest=d, check=False))
                for p, d in zip(big, big_digests, strict=True)]
    out = scratch / "pulled.bin"
    pull_big = [timed(lambda d=d: client.pull_blob_to(repo, d, out)) for d in big_digests]
    out.unlink(missing_ok=True)
    read_big = [timed(lambda d=d: drain(client, repo, d)) for d in big_digests * 2]
    small_digests = [sha256_digest(b) for b in small]
    push_small = timed(lambda: [client.push_blob(repo, b, digest=d, check=False)
                                for b, d in zip(small, small_digests, strict=True)])
    pull_small = timed(lambda: [client.pull_blob(repo, d) for d in small_digests])
    latencies = []
    for i in range(heads):
        t = time.perf_counter()
        client.blob_exists(repo, small_digests[i % len(small_digests)])
        latencies.append((time.perf_counter() - t) * 1000)
    return {
        f"push {mb:.0f} MB blob (MB/s)": mb / statistics.median(push_big),
        f"pull {mb:.0f} MB blob, verified (MB/s)": mb / statistics.median(pull_big),
        f"pull {mb:.0f} MB blob, raw read (MB/s)": mb / statistics.median(read_big),
        f"push {len(small)} small blobs (blobs/s)": len(small) / push_small,
        f"pull {len(small)} small blobs (blobs/s)": len(small) / pull_small,
        "HEAD blob p50 (ms)": statistics.median(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument("--big-count", type=int, default=3, help="large blobs per run (the median is shown)")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--small-kb", type=int, default=4)
    parser.add_argument("--heads", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where both registries store blobs (default: the system temp folder; /dev/shm "
                             "takes the disk out of the comparison)")
    args = parser.parse_args()
    if REFERENCE is None:
        sys.exit("docker-registry is not installed: apt-get install -y docker-registry")
    with tempfile.TemporaryDirectory(prefix="labkit-registry-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        big = []
        for i in range(args.big_count):
            path = folder / f"big-{i}.bin"
            path.write_bytes(os.urandom(args.big_mb * 1_000_000))
            big.append(path)
        small = [os.urandom(args.small_kb * 1024) for _ in range(args.small)]
        results = {}
        for name, server in (("docker-registry", reference_registry), ("labkit", lab_registry)):
            with server(folder) as client:
                results[name] = measure(client, big, small, args.heads, folder)
                client.close()
    ref, lab = results["docker-registry"], results["labkit"]
    print(f"{'metric':38} {'labkit':>10} {'docker-registry':>16} {'labkit/ref':>11}")
    for metric in ref:
        lower_better = "(ms)" in metric
        ratio = ref[metric] / lab[metric] if lower_better else lab[metric] / ref[metric]
        print(f"{metric:38} {lab[metric]:10.2f} {ref[metric]:16.2f} {ratio:10.2f}x")
    print("(ratio: how the lab registry compares, >1 is better, for latency too; goal >= 0.8;"
          " 'verified' pulls hash and write the blob like a real client, so they are client-bound)")


if __name__ == "__main__":
    main()
