"""The sim's Docker Engine through the ``docker`` SDK, on a fresh lab (``labkit up`` in a temporary home): the
shop's catalog image built cold then rebuilt unchanged (the step cache: same image ID), and
``containers.run(image, ["python", "-c", "print('hi')"], remove=True)`` (after a first run unpacked the image).

Usage: python benchmarks/docker_engine.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-docker-") as home:
        env = {**os.environ, "LABKIT_HOME": home}
        subprocess.run([str(BIN / "labkit"), "up"], env=env, check=True, capture_output=True)
        try:
            import docker

            client = docker.DockerClient(base_url=f"unix://{home}/docker.sock", timeout=300)
            build = {"path": str(REPO / "apps"), "dockerfile": "catalog/Dockerfile", "tag": "bench/catalog:1"}
            started = time.perf_counter()
            image, _ = client.images.build(**build)
            cold = time.perf_counter() - started

            def rebuild() -> None:
                again, _ = client.images.build(**build)
                assert again.id == image.id, "an unchanged rebuild gave another image ID"

            def run() -> None:
                out = client.containers.run(image.id, ["python", "-c", "print('hi')"], remove=True)
                assert out == b"hi\n", out

            rebuilds = _timed(rebuild, args.runs)
            client.containers.run(image.id, ["python", "-c", "pass"], remove=True)  # unpack the image once
            runs = _timed(run, args.runs)
            client.close()
        finally:
            subprocess.run([str(BIN / "labkit"), "down"], env=env, check=False, capture_output=True)
    print(f"catalog image: cold build {cold:.2f} s, size {image.attrs['Size'] / 1e6:.1f} MB")
    print(f"no-change rebuild: median {statistics.median(rebuilds) * 1000:.0f} ms, max {max(rebuilds) * 1000:.0f} ms "
          f"({args.runs} runs)")
    print(f"containers.run print: median {statistics.median(runs) * 1000:.0f} ms, max {max(runs) * 1000:.0f} ms "
          f"({args.runs} runs)")


if __name__ == "__main__":
    main()
