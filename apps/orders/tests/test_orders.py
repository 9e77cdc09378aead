"""orders: create, list and fetch orders."""

from __future__ import annotations

import json

from orders import create_app


def call(app, method: str, path: str, body: object = None) -> tuple[int, dict]:
    status, _, raw = app.handle(method, path, {}, json.dumps(body).encode() if body is not None else b"")
    return status, json.loads(raw)


def test_create_list_get() -> None:
    app = create_app({"POD_NAME": "orders-1"})
    status, order = call(app, "POST", "/orders", {"product_id": "p-1", "quantity": 2, "unit_price": 12.5})
    assert status == 201 and order["id"] == "o-1" and order["pod"] == "orders-1"
    assert call(app, "GET", "/orders")[1]["count"] == 1
    assert call(app, "GET", "/orders/o-1") == (200, order)
    assert call(app, "GET", "/orders/o-9")[0] == 404
    assert b'orders_created_total 1.0' in app.handle("GET", "/metrics", {})[2]


def test_rejects_bad_orders() -> None:
    app = create_app({})
    assert call(app, "POST", "/orders", {"quantity": 1})[0] == 400
    assert call(app, "POST", "/orders", {"product_id": "p-1", "quantity": 0})[0] == 400
    assert app.handle("POST", "/orders", {}, b"{not json")[0] == 400
