"""The support console: server-rendered pages under /console/ (a sub-application)."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from service.web.console.pages import routes
from service.web.console.security import console_middleware

PREFIX = "/console"


def console_app(max_body_bytes: int) -> web.Application:
    app = web.Application(middlewares=[console_middleware], client_max_size=max_body_bytes)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("service.web.console", "templates"),
        # Every value is escaped in every template (the .html ones, and any other).
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.add_routes(routes)
    return app
