"""Chapter 10's code changes, applied to a copy of ``apps/`` as the shop's repository holds it: the new field's
release passes the shop's own tests and serves the field, the bad release passes them too and fails under load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.core.checkout import Checkout
from labkit.core.errors import LabError
from labkit.release.changes import FEATURE, FIELD, add_ratings, pool_of_two


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(Checkout.find().root / "apps", tmp_path / "shop", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "shop"


def shop_tests(work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "catalog"],
                          cwd=work, capture_output=True, text=True, timeout=120)


def serve(work: Path, requests: int) -> list[tuple[int, dict]]:
    """``requests`` product lists from the changed catalog, in one process, as fast as it answers."""
    code = (f"import json, sys\nsys.path.insert(0, {str(work)!r})\nfrom catalog import create_app\n"
            "app = create_app({'POD_NAME': 'catalog-1'})\n"
            f"print(json.dumps([(s, json.loads(b)) for s, _, b in (app.handle('GET', '/products', {{}}) "
            f"for _ in range({requests}))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return [tuple(r) for r in json.loads(out.stdout.strip().splitlines()[-1])]


def test_the_ratings_release_passes_its_tests_and_logs_its_feature(work: Path) -> None:
    add_ratings(work)
    result = shop_tests(work)
    assert result.returncode == 0 and "4 passed" in result.stdout, result.stdout + result.stderr
    (status, body), = serve(work, 1)
    assert status == 200 and all(1 <= p[FIELD] <= 5 for p in body["products"])
    logged = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(work)!r})\n"
                             "from catalog import create_app\n"
                             "create_app({'POD_NAME': 'c'}).handle('GET', '/products', {})"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(json.loads(x) for x in logged.splitlines() if '"ratings served"' in x)
    assert line["feature"] == FEATURE and len(line["trace_id"]) == 32 and line["products"] == 6


def test_the_bad_release_passes_its_tests_and_fails_under_load(work: Path) -> None:
    add_ratings(work)
    pool_of_two(work)
    result = shop_tests(work)
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = [s for s, _ in serve(work, 6)]
    assert statuses[:2] == [200] * 2 and set(statuses[2:]) == {500}, statuses


def test_a_change_to_a_file_it_no_longer_recognises_says_so(work: Path) -> None:
    (work / "catalog" / "__init__.py").write_text('"""catalog, rewritten"""\n')
    with pytest.raises(LabError, match="has changed"):
        add_ratings(work)
