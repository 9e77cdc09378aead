"""catalog: the product list."""

from __future__ import annotations

import json

from catalog import PRODUCTS, create_app

APP = create_app({"POD_NAME": "catalog-1"})


def call(path: str) -> tuple[int, dict]:
    status, _, body = APP.handle("GET", path, {})
    return status, json.loads(body)


def test_lists_products() -> None:
    status, body = call("/products")
    assert status == 200 and body["count"] == len(PRODUCTS) and body["pod"] == "catalog-1"


def test_filters_by_name() -> None:
    assert [p["id"] for p in call("/products?q=mug")[1]["products"]] == ["p-1"]


def test_one_product_or_404() -> None:
    assert call("/products/p-2") == (200, PRODUCTS[1])
    assert call("/products/p-99")[0] == 404
