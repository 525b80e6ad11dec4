"""Every flow, built once per app from the same engine, settings, keys, hasher and clock."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.domain.clock import Clock
from service.domain.id_tokens import KeySource
from service.domain.messages import MessageRenderer
from service.domain.observer import AuthObserver
from service.domain.passwords import PasswordHasher
from service.domain.tokens import AccessTokens
from service.flows.account import Accounts
from service.flows.admin import Admin
from service.flows.authentication import Authenticator
from service.flows.codes import Codes, Messages
from service.flows.console import StaffSignIn, SupportDesk
from service.flows.events import AuditTrail
from service.flows.identities import Identities, identity_views
from service.flows.issuing import TokenIssuer
from service.flows.login import Login
from service.flows.logout import Logout
from service.flows.oauth import OAuthTokens
from service.flows.recovery import Recovery
from service.flows.refresh import Refresh
from service.flows.sessions import Sessions
from service.flows.throttle import KEY_PURPOSE as THROTTLE_KEY_PURPOSE
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
    console: tuple[StaffSignIn, SupportDesk]
    oauth: OAuthTokens
    recovery: Recovery
    identities: Identities


def build_flows(
    engine: AsyncEngine,
    settings: Settings,
    access_tokens: AccessTokens,
    hasher: PasswordHasher,
    clock: Clock,
    observer: AuthObserver,
    code_key: bytes,
    renderer: MessageRenderer,
    provider_keys: KeySource,
) -> Flows:
    issuer = TokenIssuer(settings, access_tokens)
    sessions = Sessions(engine, settings, clock)
    trail = AuditTrail(engine)
    messages = Messages(renderer, settings.mail)
    codes = Codes(code_key, settings.mail, messages)
    throttle_secret = access_tokens.derive_secret(THROTTLE_KEY_PURPOSE)
    throttle = LoginThrottle(settings, clock, throttle_secret)
    require_verified = settings.mail.require_verified_email
    return Flows(
        accounts=Accounts(engine, hasher, throttle, clock, codes, messages),
        login=Login(engine, hasher, issuer, throttle, clock, observer, require_verified),
        refresh=Refresh(engine, settings, issuer, clock, observer),
        authenticator=Authenticator(engine, access_tokens, issuer, clock),
        logout=Logout(engine, issuer, clock),
        sessions=sessions,
        trail=trail,
        admin=Admin(engine, sessions, trail, clock, observer),
        console=(
            StaffSignIn(
                engine,
                hasher,
                LoginThrottle(settings, clock, throttle_secret, kind_prefix="console_"),
                clock,
            ),
            SupportDesk(engine, sessions, clock, codes, identities=identity_views),
        ),
        oauth=OAuthTokens(engine, issuer, clock),
        recovery=Recovery(engine, settings, hasher, codes, messages, throttle, clock),
        identities=Identities(engine, settings.oidc, provider_keys, issuer, clock, observer),
    )
