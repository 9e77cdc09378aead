"""The GitLab chapter's goals, measured on a sim lab of its own (a temporary ``LABKIT_HOME``):

* push → pipeline created: ``git push`` of a commit until the API lists a pipeline for it (goal ≤ 1 s);
* the shop's whole pipeline (``apps/.gitlab-ci.yml``: build, test, security, deploy) from created to finished
  (goal ≤ 60 s on 2 cores);
* ``git clone`` of the shop over HTTP (goal ≤ 1 s);
* ``python-gitlab`` listing 1,000 pipelines with ``get_all=True`` (goal: all 1,000, through ``Link: rel="next"``);
* the lab daemon's memory with GitLab idle, against the same lab with GitLab skipped (goal ≤ +100 MB).

Prints one table. Usage: python benchmarks/gitlab.py [--pushes 5] [--clones 5] [--pipelines 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# this file's folder leaves the path: python-gitlab's ``import gitlab`` must not find this script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from labkit.backends.sim.backend import daemon_pid  # noqa: E402
from labkit.core.paths import LabPaths  # noqa: E402
from labkit.lab import Lab  # noqa: E402

LABKIT = str(Path(sys.executable).parent / "labkit")
TINY_CI = "say:\n  script: [echo hello]\n"  # a pipeline for timing its creation, not its jobs
MANUAL_CI = "later:\n  when: manual\n  script: [echo later]\n"  # pipelines that run nothing


def up(home: Path, skip: list[str] | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    if skip:
        (home / "settings.json").write_text(json.dumps({"skip": skip}))
    subprocess.run([LABKIT, "up", "--backend", "sim"], env={**os.environ, "LABKIT_HOME": str(home)}, check=True,
                   capture_output=True, timeout=600)


def down(home: Path) -> None:
    subprocess.run([LABKIT, "down"], env={**os.environ, "LABKIT_HOME": str(home)}, capture_output=True, timeout=300)


def daemon_rss_mb(home: Path, settle: float = 20.0) -> float:
    """The sim daemon's resident memory (MiB) after ``settle`` seconds idle (GitLab lives in its process)."""
    time.sleep(settle)
    pid = daemon_pid(LabPaths.resolve(home))
    if not pid or pid < 0:
        raise SystemExit(f"no sim daemon runs for {home}")
    return psutil.Process(pid).memory_info().rss / 2**20


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com", *args], cwd=cwd,
                   check=True, capture_output=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, timeout=120)


def push_to_pipeline(lab: Lab, tmp: Path, pushes: int) -> list[float]:
    """Seconds from the start of ``git push`` until the API lists a pipeline for the pushed commit."""
    gl = lab.gitlab.client()
    project = gl.projects.create({"name": "bench-push", "initialize_with_readme": False})
    work = tmp / "bench-push"
    git("clone", "-q", lab.gitlab.clone_url(project.path_with_namespace), str(work))
    (work / ".gitlab-ci.yml").write_text(TINY_CI)
    times = []
    for i in range(pushes):
        (work / "n.txt").write_text(str(i))
        git("add", "-A", cwd=work)
        git("commit", "-qm", f"push {i}", cwd=work)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()
        started = time.perf_counter()
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
        while not project.pipelines.list(sha=sha, get_all=False):
            time.sleep(0.01)
        times.append(time.perf_counter() - started)
    return times


def shop_pipeline(lab: Lab, tmp: Path) -> tuple[float, str]:
    """The shop's whole pipeline for a change to the catalog: seconds from created to finished, and its status."""
    work = lab.gitlab.clone(tmp / "shop-change")
    catalog = work / "catalog" / "__init__.py"
    catalog.write_text(catalog.read_text() + "\n# a change to build, test, scan and deploy\n")
    git("commit", "-qam", "catalog: a change", cwd=work)
    git("push", "-q", "origin", "HEAD", cwd=work)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()
    watch = lab.gitlab.watch(lab.gitlab.pipeline_for(sha)["id"], timeout=600, every=0.5)
    jobs = watch.jobs
    return float(jobs["end"].max()), watch.status


def clones(lab: Lab, tmp: Path, n: int) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        git("clone", "-q", lab.gitlab.clone_url(), str(tmp / f"clone-{i}"))
        times.append(time.perf_counter() - started)
    return times


def list_pipelines(lab: Lab, count: int) -> tuple[int, float, float]:
    """Create ``count`` pipelines through the API (``POST /projects/:id/pipeline``) on a project whose only job is
    manual, then list them all with ``get_all=True``: (listed, seconds to create them, seconds to list them)."""
    gl = lab.gitlab.client()
    project = gl.projects.create({"name": "bench-list"})
    project.files.create({"file_path": ".gitlab-ci.yml", "branch": "main", "content": MANUAL_CI,
                          "commit_message": "a manual job"})
    started = time.perf_counter()
    for _ in range(count - len(project.pipelines.list(get_all=True))):
        project.pipelines.create({"ref": "main"})
    created = time.perf_counter() - started
    started = time.perf_counter()
    listed = len(project.pipelines.list(get_all=True))
    return listed, created, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument("--clones", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=1000)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-gitlab-") as folder:
        tmp = Path(folder)
        without = tmp / "home-without"
        up(without, skip=["gitlab"])
        try:
            base = daemon_rss_mb(without)
        finally:
            down(without)
        home = tmp / "home"
        up(home)
        try:
            idle = daemon_rss_mb(home)
            os.environ["LABKIT_HOME"] = str(home)
            lab = Lab.connect(backend="sim")
            lab.gitlab.repair()
            c = clones(lab, tmp, args.clones)
            rows.append(("git clone of shop/shop (median)", f"{statistics.median(c):.3f} s", "≤ 1 s"))
            p = push_to_pipeline(lab, tmp, args.pushes)
            rows.append(("push → pipeline created (median / max)",
                         f"{statistics.median(p):.3f} s / {max(p):.3f} s", "≤ 1 s"))
            seconds, status = shop_pipeline(lab, tmp)
            rows.append((f"the shop's whole pipeline ({status}, {os.cpu_count()} cores)", f"{seconds:.1f} s",
                         "≤ 60 s on 2 cores"))
            listed, create_s, list_s = list_pipelines(lab, args.pipelines)
            rows.append((f"python-gitlab get_all=True over {args.pipelines} pipelines",
                         f"{listed} listed in {list_s:.2f} s (created in {create_s:.1f} s)",
                         f"all {args.pipelines}"))
            after = daemon_rss_mb(home, settle=5)
        finally:
            down(home)
    rows.append(("lab daemon memory, GitLab idle vs skipped",
                 f"+{idle - base:.0f} MiB ({idle:.0f} vs {base:.0f} MiB)", "≤ +100 MB"))
    rows.append(("lab daemon memory after the runs above", f"{after:.0f} MiB", "—"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<40}  goal")
    for name, result, goal in rows:
        print(f"{name:<{width}}  {result:<40}  {goal}")


if __name__ == "__main__":
    main()
