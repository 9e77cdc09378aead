"""``/v1/status`` (+ ``writable``), ``/v1/security/anonymous``, the repositories' status as Nexus' UI reads it,
and ``/service/metrics/prometheus``."""

from __future__ import annotations

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import USER, json_response
from ..metrics import PROMETHEUS_TEXT
from ..repositories import validation
from .base import V1, Services, json_body

ANONYMOUS = "anonymous-enabled"


def anonymous_json(enabled: bool) -> dict[str, object]:
    return {"enabled": enabled, "userId": "anonymous", "realmName": "NexusAuthorizingRealm"}


def install(app: web.Application, s: Services) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def anonymous(request: web.Request) -> web.Response:
        return json_response(anonymous_json(bool(s.store.setting(ANONYMOUS, True))))

    async def set_anonymous(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            raise validation(("enabled", "must not be null"))
        if body.get("userId", "anonymous") != "anonymous":
            raise validation(("userId", "only the anonymous user is supported by the labkit simulator"))
        s.store.set_setting(ANONYMOUS, body["enabled"])
        return json_response(anonymous_json(body["enabled"]))

    async def change_password(request: web.Request) -> web.Response:
        user = request.match_info["user"]
        if user != str(request[USER]):
            raise ApiError(403, "Forbidden", "Forbidden: only the user themselves may change their password here")
        password = (await request.text()).strip()
        if not password:
            raise validation(("password", "must not be empty"))
        s.change_password(user, password)
        return web.Response(status=204)

    async def details(request: web.Request) -> web.Response:
        rows = []
        for config in s.store.repositories():
            assets, size = s.store.stats(config["name"])
            rows.append({"name": config["name"], "type": config["type"], "format": config["format"],
                         "url": f"{s.base_url}/repository/{config['name']}", "size": size, "assets": assets,
                         "status": s.engine.status(config)})
        return json_response(rows)

    async def metrics(request: web.Request) -> web.Response:
        stored = {c["name"]: s.store.stats(c["name"]) for c in s.store.repositories()}
        return web.Response(text=s.metrics.render(stored), headers={"Content-Type": PROMETHEUS_TEXT})

    app.router.add_get(f"{V1}/status", status)
    app.router.add_get(f"{V1}/status/writable", status)
    app.router.add_get(f"{V1}/security/anonymous", anonymous)
    app.router.add_put(f"{V1}/security/anonymous", set_anonymous)
    app.router.add_put(f"{V1}/security/users/{{user}}/change-password", change_password)
    app.router.add_get("/service/rest/internal/ui/repositories/details", details)
    app.router.add_get("/service/metrics/prometheus", metrics)
