"""Typed keys for what lives on the application (no module-level singletons)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth import Auth
from service.config import Settings
from service.domain.keys import KeySet

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", KeySet)
HEAD_REVISION = web.AppKey("head_revision", str)
ENGINE = web.AppKey("engine", AsyncEngine)
AUTH = web.AppKey("auth", Auth)
# The in-server pruning task, present only when AUTH_PRUNE_INTERVAL is set.
PRUNE_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("prune_task")
# The OpenAPI document as served (JSON bytes, built once at app creation).
OPENAPI = web.AppKey("openapi", bytes)
