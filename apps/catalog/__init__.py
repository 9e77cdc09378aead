"""catalog: the shop's product list (read-only, in memory)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shopkit import App, HttpError, Request

PRODUCTS = [
    {"id": "p-1", "name": "Kubernetes mug", "price": 12.5, "stock": 40},
    {"id": "p-2", "name": "HAProxy hoodie", "price": 39.0, "stock": 12},
    {"id": "p-3", "name": "GitOps sticker pack", "price": 4.0, "stock": 300},
    {"id": "p-4", "name": "Prometheus T-shirt", "price": 19.9, "stock": 25},
    {"id": "p-5", "name": "Jaeger trace poster", "price": 9.5, "stock": 60},
    {"id": "p-6", "name": "Istio sail cap", "price": 15.0, "stock": 18},
]


def create_app(env: Mapping[str, str] = os.environ) -> App:
    app = App("catalog", env)
    by_id = {p["id"]: p for p in PRODUCTS}

    @app.route("GET", "/products")
    def products(request: Request) -> dict[str, object]:
        query = request.query.get("q", "").lower()
        items = [p for p in PRODUCTS if query in p["name"].lower()]  # type: ignore[operator]
        return {"products": items, "count": len(items), "pod": app.pod}

    @app.route("GET", "/products/{id}")
    def product(request: Request) -> dict[str, object]:
        found = by_id.get(request.params["id"])
        if found is None:
            raise HttpError(404, f"no product {request.params['id']!r}")
        return found

    return app
