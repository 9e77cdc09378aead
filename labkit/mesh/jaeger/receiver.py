"""The OTLP/HTTP receiver (``POST /v1/traces``, port 4318), answering as the OpenTelemetry Collector's
``otlpreceiver`` inside Jaeger v2 does: an empty ``ExportTraceServiceResponse`` once the spans are committed to
disk, and errors as a ``google.rpc.Status`` in the request's encoding (400 for a payload it cannot read, 405 for a
method other than POST, 415 for another media type)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ...core.errors import ApiError
from .otlp import SUPPORTED, BadPayload, export_response, media_type, parse_request, span_docs, status_body
from .store import TraceStore

INVALID_ARGUMENT = 3  # google.rpc.Code
UNIMPLEMENTED = 12


def render_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    mtype = media_type(request.headers.get("Content-Type", ""))
    code = INVALID_ARGUMENT if err.status == 400 else UNIMPLEMENTED
    body, content_type = status_body(code, err.message, mtype)
    return web.Response(status=err.status, body=body, content_type=content_type)


def routes(store: TraceStore) -> list[web.RouteDef]:
    """``/v1/traces`` over ``store``."""

    def ingest(body: bytes, mtype: str) -> int:
        return store.write(span_docs(parse_request(body, mtype)))

    async def traces(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "405 method not allowed, supported: [POST]")
        mtype = media_type(request.headers.get("Content-Type", ""))
        if mtype not in SUPPORTED:
            raise ApiError(415, "UnsupportedMediaType",
                           "415 unsupported media type, supported: [application/json, application/x-protobuf]")
        try:
            body = await request.read()  # aiohttp undoes a gzip/deflate Content-Encoding
        except web.RequestPayloadError as err:
            encoding = request.headers.get("Content-Encoding", "")
            raise ApiError(400, "BadRequest", f"failed to decompress {encoding} body: {err.args[0]}") from None
        try:
            await asyncio.to_thread(ingest, body, mtype)
        except BadPayload as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        payload, content_type = export_response(mtype)
        return web.Response(body=payload, content_type=content_type)

    return [web.route("*", "/v1/traces", traces)]
