"""Jaeger for the tests: the component alone on real loopback listeners in a temporary lab home (one per module),
and services that trace with the real OpenTelemetry SDK, exporting by OTLP/HTTP (protobuf) as the shop does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from labkit.mesh.jaeger.component import Jaeger

from ..components import ComponentLoop


class RunningJaeger(ComponentLoop):
    def __init__(self, home: Path) -> None:
        super().__init__(home, "jaeger")
        self.component = self.start(Jaeger(), "jaeger")

    @property
    def url(self) -> str:
        return self.component.endpoint().url

    @property
    def otlp(self) -> str:
        return self.component.endpoint().otlp

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, timeout=10)

    def stop_components(self) -> None:
        self.run(self.component.stop())


class TracedService:
    """One service's TracerProvider: every span is exported when it ends (SimpleSpanProcessor)."""

    def __init__(self, otlp: str, name: str, **resource: str) -> None:
        self.name = name
        self.provider = TracerProvider(resource=Resource.create({"service.name": name, **resource}))
        self.provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp}/v1/traces",
                                                                              timeout=10)))
        self.tracer: Tracer = self.provider.get_tracer("labkit.tests", "1.0")

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture(scope="module", name="jaeger")
def jaeger_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningJaeger]:
    with RunningJaeger(tmp_path_factory.mktemp("jaeger") / "home") as running:
        yield running


def hex_id(trace_id: int) -> str:
    return format(trace_id, "032x")
