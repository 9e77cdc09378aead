"""orders: create and list orders (in memory, per replica — the lessons show what that means)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from shopkit import App, HttpError, Request, Response


def create_app(env: Mapping[str, str] = os.environ) -> App:
    app = App("orders", env)
    orders: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    created = app.telemetry.counter("orders_created", "Orders created")

    @app.route("GET", "/orders")
    def list_orders(request: Request) -> dict[str, object]:
        with lock:
            items = list(orders.values())
        return {"orders": items, "count": len(items), "pod": app.pod}

    @app.route("GET", "/orders/{id}")
    def get_order(request: Request) -> dict[str, Any]:
        with lock:
            found = orders.get(request.params["id"])
        if found is None:
            raise HttpError(404, f"no order {request.params['id']!r}")
        return found

    @app.route("POST", "/orders")
    def create_order(request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("product_id"), str):
            raise HttpError(400, "product_id (a string) is required")
        quantity = body.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 100:
            raise HttpError(400, "quantity must be an integer from 1 to 100")
        with lock:
            order = {"id": f"o-{len(orders) + 1}", "product_id": body["product_id"], "quantity": quantity,
                     "unit_price": body.get("unit_price"), "created": time.time(), "pod": app.pod}
            orders[order["id"]] = order
        created.inc()
        return Response(201, order, headers={"Location": f"/orders/{order['id']}"})

    return app
