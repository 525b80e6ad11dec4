"""Typed keys for what lives on the application (no module-level singletons).

Handlers read them through `request.config_dict`, so that sub-applications (admin) see the keys
of the app they are mounted in.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.domain.keys import KeySet
from service.domain.passwords import PasswordHasher
from service.flows.wiring import Flows
from service.ops.oidc_keys import ProviderKeys
from service.ops.outbox import OutboxDelivery

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", KeySet)
HEAD_REVISION = web.AppKey("head_revision", str)
ENGINE = web.AppKey("engine", AsyncEngine)
FLOWS = web.AppKey("flows", Flows)
# The app's one password hasher (bcrypt pool), shared by every flow that hashes or verifies.
HASHER = web.AppKey("hasher", PasswordHasher)
# The in-server pruning task, present only when AUTH_PRUNE_INTERVAL is set.
PRUNE_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("prune_task")
# The OpenAPI document as served (JSON bytes, built once at app creation).
OPENAPI = web.AppKey("openapi", bytes)
# The outbox delivery of this process (its task runs only when a back end is configured).
OUTBOX = web.AppKey("outbox", OutboxDelivery)
# Identity providers' discovery documents and keys, cached (over the app's aiohttp session).
PROVIDER_KEYS = web.AppKey("provider_keys", ProviderKeys)
