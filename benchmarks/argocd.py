"""The Argo CD chapter's goals, measured on a sim lab of its own (a temporary ``LABKIT_HOME``):

* commit → Synced and Healthy with the webhook: ``git push`` of a change to the gateway's pod template in
  ``shop/manifests`` until the ``shop`` Application (automated sync) is Synced at that commit and Healthy, the
  rollout done (goal ≤ 5 s);
* drift → healed with self-heal: ``kubectl scale`` of the gateway until its Deployment has the declared replicas
  again (goal ≤ 3 s);
* 50 Applications of the shop reconciled in one pass: 50 Applications of ``shop/manifests`` (manual sync, each into
  a namespace of its own) hard-refreshed at once (the ``argocd.argoproj.io/refresh`` annotation) until every one has
  a newer ``status.reconciledAt`` and a comparison result (goal ≤ 10 s on 2 cores).

Prints one table. Usage: python benchmarks/argocd.py [--commits 5] [--drifts 5] [--apps 50] [--home H]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# this file's folder leaves the path: python-gitlab's ``import gitlab`` must not find benchmarks/gitlab.py
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.argocd.chapter import APP, GROUP, PLURAL, VERSION, application_manifest, synced_and_healthy  # noqa: E402
from labkit.lab import Lab  # noqa: E402

LABKIT = str(Path(sys.executable).parent / "labkit")
ROUND = "labkit.dev/bench-round"  # a pod-template annotation: each commit rolls the gateway out


def poll(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> float:
    """Seconds until ``check()`` holds; SystemExit naming ``what`` after ``timeout``."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"{what} not reached in {timeout:.0f} s")
        time.sleep(every)
    return time.perf_counter() - started


def commits(lab: Lab, rounds: int) -> list[float]:
    """Push → Synced at the commit and Healthy, ``rounds`` times."""
    out = []
    for i in range(rounds):
        def edit(work: Path, i: int = i) -> None:
            gateway = work / "gateway.yaml"
            text = gateway.read_text()
            marker = "      annotations:\n"
            line = f"        {ROUND}: \"{time.time_ns()}-{i}\"\n"
            if ROUND in text:
                text = "".join(line if ROUND in old else old for old in text.splitlines(keepends=True))
            elif marker in text:
                text = text.replace(marker, marker + line, 1)
            else:  # the pod template's metadata gets annotations after its labels
                text = text.replace("  template:\n    metadata:\n",
                                    f"  template:\n    metadata:\n{marker}{line}", 1)
            gateway.write_text(text)

        started = time.perf_counter()
        sha = lab.argocd.commit(edit, f"bench: gateway round {i}")
        reached = synced_and_healthy(sha)
        poll(lambda reached=reached: reached(lab.argocd.get(APP) or {}), 60,
             f"round {i} Synced at {sha[:8]} and Healthy", 0.02)
        out.append(time.perf_counter() - started)
    return out


def drifts(lab: Lab, rounds: int) -> list[float]:
    """``kubectl scale deployment gateway --replicas=5`` → back to the declared replicas, ``rounds`` times."""
    apps = lab.kubernetes.apps()
    declared = apps.read_namespaced_deployment("gateway", "shop").spec.replicas
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        lab.kubectl("scale", "deployment", "gateway", "-n", "shop", "--replicas=5", check=True)
        poll(lambda: apps.read_namespaced_deployment("gateway", "shop").spec.replicas == declared, 30,
             "the gateway's declared replicas")
        out.append(time.perf_counter() - started)
        lab.argocd.wait(APP, timeout=60)
    return out


def many(lab: Lab, count: int) -> tuple[float, float]:
    """Seconds until ``count`` new Applications all have a comparison, then until a hard refresh of all of them
    is reconciled."""
    objects = lab.argocd._objects()
    namespace = lab.argocd.endpoint.namespace
    repo = lab.argocd.repo_url("shop/manifests")
    names = [f"shop-bench-{i:02d}" for i in range(count)]

    def statuses() -> list[dict[str, Any]]:
        items = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        return [a.get("status") or {} for a in items if a["metadata"]["name"] in names]

    started = time.perf_counter()
    for name in names:
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, application_manifest(
            name, repo, namespace, destination=name, automated=False))
    poll(lambda: sum(bool(s.get("reconciledAt") and (s.get("sync") or {}).get("status")) for s in statuses())
         == count, 120, f"{count} Applications compared", 0.1)
    first = time.perf_counter() - started
    latest = max(s.get("reconciledAt", "") for s in statuses())
    time.sleep(1.1)  # reconciledAt has a resolution of one second
    started = time.perf_counter()
    for name in names:
        objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {
            "metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}})
    poll(lambda: all(s.get("reconciledAt", "") > latest for s in statuses()), 120,
         f"{count} Applications reconciled after a hard refresh", 0.1)
    second = time.perf_counter() - started
    for name in names:
        objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return first, second


def measure(lab: Lab, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    lab.chapter(6)
    lab.argocd.add_webhook()
    lab.argocd.create_application()
    lab.argocd.wait(APP, timeout=180)
    c = commits(lab, args.commits)
    rows.append(("commit → Synced and Healthy, webhook (median / max)",
                 f"{statistics.median(c):.2f} s / {max(c):.2f} s", "≤ 5 s"))
    d = drifts(lab, args.drifts)
    rows.append(("drift → healed, self-heal (median / max)", f"{statistics.median(d):.2f} s / {max(d):.2f} s",
                 "≤ 3 s"))
    first, second = many(lab, args.apps)
    rows.append((f"{args.apps} Applications: first comparison of all", f"{first:.2f} s", "—"))
    rows.append((f"{args.apps} Applications reconciled in one pass (hard refresh, {os.cpu_count()} cores)",
                 f"{second:.2f} s", "≤ 10 s on 2 cores"))
    lab.gitlab.repair()  # shop/manifests as seeded again
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--drifts", type=int, default=5)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--home", type=Path, help="a running sim lab's home to measure (default: a new one)")
    args = parser.parse_args()
    if args.home:
        os.environ["LABKIT_HOME"] = str(args.home)
        rows = measure(Lab.connect(backend="sim"), args)
    else:
        with tempfile.TemporaryDirectory(prefix="labkit-bench-argocd-") as folder:
            home = Path(folder) / "home"
            env = {**os.environ, "LABKIT_HOME": str(home)}
            subprocess.run([LABKIT, "up", "--backend", "sim"], env=env, check=True, capture_output=True,
                           timeout=900)
            try:
                os.environ["LABKIT_HOME"] = str(home)
                rows = measure(Lab.connect(backend="sim"), args)
            finally:
                subprocess.run([LABKIT, "down"], env=env, capture_output=True, timeout=300)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<24}  goal")
    for name, result, goal in rows:
        print(f"{name:<{width}}  {result:<24}  {goal}")


if __name__ == "__main__":
    main()
