"""The ceiling for GET /v1/me: one aiohttp process that decodes one HS256 JWT per request with
PyJWT (as Rotor does, pinned algorithm, issuer and audience) and answers a small JSON object.
No database, no middleware. `python -m bench.bare PORT` with BENCH_JWT_SECRET set."""

from __future__ import annotations

import os
import sys

import jwt
import orjson
from aiohttp import web


def make_app(secret: bytes) -> web.Application:
    async def me(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "")[len("Bearer ") :]
        try:
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], audience="rotor", issuer="rotor"
            )
        except jwt.PyJWTError:
            return web.Response(status=401)
        body = orjson.dumps({"user": {"id": claims["sub"]}, "session_id": claims["sid"]})
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/me", me)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(os.environ["BENCH_JWT_SECRET"].encode()),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
    )
