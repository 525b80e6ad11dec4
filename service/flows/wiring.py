"""Every flow, built once per app from the same engine, settings, keys, hasher and clock."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.domain.clock import Clock
from service.domain.id_tokens import KeySource
from service.domain.observer import AuthObserver
from service.domain.passwords import PasswordHasher
from service.domain.tokens import AccessTokens
from service.flows.account import Accounts
from service.flows.admin import Admin
from service.flows.authentication import Authenticator
from service.flows.events import AuditTrail
from service.flows.identities import Identities
from service.flows.issuing import TokenIssuer
from service.flows.login import Login
from service.flows.logout import Logout
from service.flows.refresh import Refresh
from service.flows.sessions import Sessions
from service.flows.throttle import LoginThrottle


@dataclass(frozen=True, slots=True)
class Flows:
    accounts: Accounts
    login: Login
    refresh: Refresh
    authenticator: Authenticator
    logout: Logout
    sessions: Sessions
    trail: AuditTrail
    admin: Admin
    identities: Identities


def build_flows(
    engine: AsyncEngine,
    settings: Settings,
    access_tokens: AccessTokens,
    hasher: PasswordHasher,
    clock: Clock,
    observer: AuthObserver,
    provider_keys: KeySource,
) -> Flows:
    issuer = TokenIssuer(settings, access_tokens)
    sessions = Sessions(engine, settings, clock)
    trail = AuditTrail(engine)
    return Flows(
        accounts=Accounts(engine, hasher, clock),
        login=Login(engine, hasher, issuer, LoginThrottle(settings, clock), clock, observer),
        refresh=Refresh(engine, settings, issuer, clock, observer),
        authenticator=Authenticator(engine, access_tokens, issuer, clock),
        logout=Logout(engine, issuer, clock),
        sessions=sessions,
        trail=trail,
        admin=Admin(engine, sessions, trail, clock, observer),
        identities=Identities(engine, settings.oidc, provider_keys, issuer, clock, observer),
    )
