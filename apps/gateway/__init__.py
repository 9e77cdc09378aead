"""gateway: the shop's public entry; calls catalog and orders by service name.

``CATALOG_URL`` and ``ORDERS_URL`` default to ``http://catalog:8080`` and ``http://orders:8080``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from shopkit import App, HttpError, Request, Response, Upstream


def create_app(env: Mapping[str, str] = os.environ) -> App:
    app = App("gateway", env)
    catalog = Upstream(app.tracer, "catalog", env.get("CATALOG_URL") or "http://catalog:8080")
    orders = Upstream(app.tracer, "orders", env.get("ORDERS_URL") or "http://orders:8080")

    @app.route("GET", "/api/products")
    def products(request: Request) -> object:
        return catalog.get_ok("/products")

    @app.route("GET", "/api/products/{id}")
    def product(request: Request) -> object:
        return catalog.get_ok(f"/products/{request.params['id']}")

    @app.route("GET", "/api/orders")
    def list_orders(request: Request) -> object:
        return orders.get_ok("/orders")

    @app.route("POST", "/api/orders")
    def create_order(request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("product_id"), str):
            raise HttpError(400, "product_id (a string) is required")
        try:
            item = catalog.get_ok(f"/products/{body['product_id']}")
        except HttpError as err:
            raise HttpError(400 if err.status == 404 else err.status, err.message) from err
        status, order = orders.call("POST", "/orders", {"product_id": item["id"], "quantity": body.get("quantity", 1),
                                                        "unit_price": item["price"]})
        if status >= 500:
            raise HttpError(502, f"orders answered {status}")
        return Response(status, order)

    return app
