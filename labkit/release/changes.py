"""The code changes chapter 10 ships through the platform, as edits of a ``shop/shop`` working copy (its files are
those of ``apps/``): each is what an attendee types, so the solution cells and the benchmark make the same commit.

* ``add_ratings``: every product gets a ``rating``, with a unit test; the catalog logs ``feature: ratings`` with the
  request's trace id on each list it serves: a field only the new version logs.
* ``pool_of_two``: a release whose unit tests pass but which fails under load (a connection pool of two per
  second: at the workshop's traffic, about 3 lists a second per pod, a share of them answers 500).
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import LabError

FIELD = "rating"  # the new field of a product
FEATURE = "ratings"  # what the new version logs in its ``feature`` field, and only it
RATINGS = {"p-1": 4.6, "p-2": 4.8, "p-3": 4.1, "p-4": 4.4, "p-5": 3.9, "p-6": 4.2}
CATALOG = Path("catalog") / "__init__.py"
LIST = '        items = [p for p in PRODUCTS if query in p["name"].lower()]  # type: ignore[operator]\n'
RATED_LIST = (
    f'        items = [{{**p, "{FIELD}": RATINGS[str(p["id"])]}} for p in PRODUCTS\n'
    '                 if query in str(p["name"]).lower()]\n'
    f'        app.telemetry.log("info", "ratings served", feature="{FEATURE}", products=len(items),\n'
    '                          trace_id=trace_ids(trace.get_current_span())[0])\n')
RATINGS_TEST = f'''"""catalog: every product has a {FIELD} from its reviews."""

from __future__ import annotations

import json

from catalog import create_app

APP = create_app({{"POD_NAME": "catalog-1"}})


def test_every_listed_product_has_a_{FIELD}() -> None:
    status, _, body = APP.handle("GET", "/products", {{}})
    products = json.loads(body)["products"]
    assert status == 200 and products and all(1 <= p["{FIELD}"] <= 5 for p in products)
'''
POOL = '''

class Recommendations:
    """Connections to the recommendations store: at most two opened a second (the store's pool)."""

    def __init__(self, size: int = 2) -> None:
        self.size, self.opened = size, collections.deque()

    def connect(self) -> None:
        now = time.monotonic()
        while self.opened and now - self.opened[0] > 1.0:
            self.opened.popleft()
        if len(self.opened) >= self.size:
            raise RuntimeError(f"recommendations: connection pool exhausted ({self.size} in use)")
        self.opened.append(now)
'''


def _edit(work: Path, old: str, new: str, what: str) -> None:
    path = work / CATALOG
    text = path.read_text()
    if old not in text:
        raise LabError(f"{CATALOG} of shop/shop has changed: cannot {what} (restore it with lab.gitlab.repair())")
    path.write_text(text.replace(old, new, 1))


def add_ratings(work: Path) -> None:
    """Every product listed with a ``rating``; the list logs ``feature: ratings`` with its trace id; a test."""
    _edit(work, "from shopkit import App, HttpError, Request\n",
          "from opentelemetry import trace\n\nfrom shopkit import App, HttpError, Request\n"
          "from shopkit.telemetry import trace_ids\n", "import the tracer")
    _edit(work, "]\n\n\ndef create_app", f"]\nRATINGS = {RATINGS!r}  # stars, from the reviews\n\n\ndef create_app",
          "add the ratings")
    _edit(work, LIST, RATED_LIST, "rate the listed products")
    (work / "catalog" / "tests" / f"test_{FIELD}s.py").write_text(RATINGS_TEST)


def pool_of_two(work: Path) -> None:
    """Each product list opens a connection to a recommendations store whose pool allows two a second: the unit
    tests pass (two lists per test module), a few requests a second per pod fail with 500."""
    _edit(work, "import os\n", "import collections\nimport os\nimport time\n", "import the pool's modules")
    _edit(work, "\n\ndef create_app", POOL + "\n\ndef create_app", "add the pool")
    _edit(work, "    by_id = {", "    store = Recommendations()\n    by_id = {", "open the pool")
    query = '        query = request.query.get("q", "").lower()\n'
    _edit(work, query, "        store.connect()  # recommendations for the list\n" + query, "connect per list")
