"""gateway: calls catalog and orders over HTTP, with trace context."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import catalog
import gateway
import orders
import pytest
from shopkit import App


def serve(app: App) -> tuple[str, object]:
    server = app.server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[App, App]]:
    orders_app = orders.create_app({"POD_NAME": "orders-1"})
    (catalog_url, s1), (orders_url, s2) = serve(catalog.create_app({"POD_NAME": "catalog-1"})), serve(orders_app)
    env = {"POD_NAME": "gateway-1", "CATALOG_URL": catalog_url, "ORDERS_URL": orders_url}
    yield gateway.create_app(env), orders_app
    s1.shutdown()  # type: ignore[attr-defined]
    s2.shutdown()  # type: ignore[attr-defined]


def call(app: App, method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, dict]:
    status, _, raw = app.handle(method, path, headers or {}, json.dumps(body).encode() if body is not None else b"")
    return status, json.loads(raw)


def test_products_through_the_gateway(shop: tuple[App, App]) -> None:
    gw, _ = shop
    status, body = call(gw, "GET", "/api/products")
    assert status == 200 and body["pod"] == "catalog-1" and body["count"] == 6
    assert call(gw, "GET", "/api/products/p-404")[0] == 404


def test_order_checks_the_catalog_and_propagates_the_trace(shop: tuple[App, App],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    gw, _ = shop
    capsys.readouterr()
    status, order = call(gw, "POST", "/api/orders", {"product_id": "p-2", "quantity": 1},
                         {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert status == 201 and order["unit_price"] == 39.0 and order["pod"] == "orders-1"
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(log["service"], log["trace_id"]) for log in logs} == {
        (svc, "4bf92f3577b34da6a3ce929d0e0e4736") for svc in ("gateway", "catalog", "orders")}
    assert call(gw, "POST", "/api/orders", {"product_id": "p-404"})[0] == 400
    assert call(gw, "GET", "/api/orders")[1]["count"] == 1


def test_upstream_failures_are_502(shop: tuple[App, App]) -> None:
    gw, orders_app = shop
    orders_app.knobs.set_fail("1")
    try:
        assert call(gw, "GET", "/api/orders")[0] == 502
    finally:
        orders_app.knobs.reset()
    down = gateway.create_app({"CATALOG_URL": "http://127.0.0.1:9", "ORDERS_URL": "http://127.0.0.1:9"})
    status, body = call(down, "GET", "/api/products")
    assert status == 502 and "unreachable" in body["error"]
