"""Settings: one frozen object built from the environment and validated once, at start-up.

Every configuration variable is read here and nowhere else. A bad value raises
`ConfigError` whose message names the variable and what it expects, so `rotor serve` can stop with
one clear line instead of starting half-configured.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from service.db.url import parse_database_url
from service.settings.browsers import BrowserSettings, parse_browsers
from service.settings.oauth import OAuthSettings, load_oauth_settings

if TYPE_CHECKING:
    from service.settings.mail import MailSettings

from service.settings.http import HttpSettings, load_http_settings
from service.settings.oidc import OidcSettings, parse_oidc

T = TypeVar("T")

JWT_ALGORITHMS = ("HS256", "EdDSA", "ES256", "RS256")
MIN_HMAC_SECRET_BYTES = 32
DEFAULT_DATA_DIR = ".rotor"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A configuration variable has an invalid value; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    jwt_alg: str = "HS256"
    # None means "generate one and keep it in the data folder" (development only).
    jwt_secret: bytes | None = field(default=None, repr=False)
    jwt_private_key_file: Path | None = None
    jwt_public_key_files: tuple[Path, ...] = ()
    issuer: str = "rotor"
    audience: str = "rotor"
    access_ttl: int = 900
    session_idle_ttl: int = 1_209_600
    session_max_ttl: int = 7_776_000
    reuse_grace: int = 10
    bcrypt_rounds: int = 12
    login_max_failures: int = 10
    login_window: int = 900
    cookie_secure: bool = True
    max_sessions: int = 50
    admin_key: str | None = field(default=None, repr=False)
    trusted_proxies: tuple[IPNetwork, ...] = ()
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    db_pool_size: int = 10
    # A request that needs an unreachable database answers 503 within at most about
    # connect + 2 x statement seconds (pool wait, a hung query, its rollback): 13 s with these,
    # inside the 15-30 s after which mobile HTTP clients commonly give up.
    db_connect_timeout: float = 3.0
    db_statement_timeout: float = 5.0
    # False behind PgBouncer in transaction mode (see service/db/engine.py).
    db_prepared_statement_cache: bool = True
    # Password hashes running or waiting per bcrypt thread; beyond that, 503 with Retry-After
    # (bounds login latency under a flood: about this many hash times at worst).
    bcrypt_queue_per_thread: int = 8
    metrics: bool = False
    event_retention_days: int = 90
    # Seconds between in-server prune runs; None (unset or 0) leaves pruning to `rotor prune`.
    prune_interval: int | None = None
    browsers: BrowserSettings = field(default_factory=BrowserSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    mail: MailSettings = field(default_factory=lambda: _default_mail())
    oidc: OidcSettings = field(default_factory=OidcSettings)
    http: HttpSettings = field(default_factory=HttpSettings)


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"an integer {bound}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("a positive number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("a positive number of seconds")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("a non-empty string")
    return raw.strip()


def _algorithm(raw: str) -> str:
    if raw not in JWT_ALGORITHMS:
        raise ValueError("one of " + ", ".join(JWT_ALGORITHMS))
    return raw


def _hmac_secret(raw: str) -> bytes:
    secret = raw.encode("utf-8")
    if len(secret) < MIN_HMAC_SECRET_BYTES:
        raise ValueError(f"at least {MIN_HMAC_SECRET_BYTES} bytes")
    return secret


def _readable_file(raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError("the path of a readable file")
    return path


def _readable_files(raw: str) -> tuple[Path, ...]:
    return tuple(_readable_file(part) for part in raw.split(",") if part.strip())


def _database_url(raw: str) -> str:
    # One host or several (a primary and its standbys), in libpq's form or SQLAlchemy's.
    parse_database_url(raw)
    return raw.strip()


def _networks(raw: str) -> tuple[IPNetwork, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in raw.split(",")
            if part.strip()
        )
    except ValueError:
        raise ValueError("comma-separated IP addresses or CIDR ranges") from None


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse(raw)
    except ValueError as exc:
        # The value itself is not echoed: it may be a secret.
        raise ConfigError(f"{name}: invalid value, expected {exc}") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build and validate the settings from `env` (the process environment by default)."""
    env = os.environ if env is None else env
    defaults = Settings()
    values: dict[str, object] = {}

    def take(attribute: str, name: str, parse: Callable[[str], object]) -> None:
        value = _read(env, name, parse)
        if value is not None:
            values[attribute] = value

    take("database_url", "DATABASE_URL", _database_url)
    take("host", "AUTH_HOST", _non_empty)
    take("port", "AUTH_PORT", _integer(1, 65535))
    take("jwt_alg", "AUTH_JWT_ALG", _algorithm)
    take("jwt_secret", "AUTH_JWT_SECRET", _hmac_secret)
    take("jwt_private_key_file", "AUTH_JWT_PRIVATE_KEY_FILE", _readable_file)
    take("jwt_public_key_files", "AUTH_JWT_PUBLIC_KEY_FILES", _readable_files)
    take("issuer", "AUTH_ISSUER", _non_empty)
    take("audience", "AUTH_AUDIENCE", _non_empty)
    # Every lifetime from 1 s up: an app team watches its client handle expiry within a minute.
    take("access_ttl", "AUTH_ACCESS_TTL", _integer(1, 86_400))
    take("session_idle_ttl", "AUTH_SESSION_IDLE_TTL", _integer(1))
    take("session_max_ttl", "AUTH_SESSION_MAX_TTL", _integer(1))
    take("reuse_grace", "AUTH_REUSE_GRACE", _integer(0, 300))
    take("bcrypt_rounds", "AUTH_BCRYPT_ROUNDS", _integer(4, 31))
    take("login_max_failures", "AUTH_LOGIN_MAX_FAILURES", _integer(1))
    take("login_window", "AUTH_LOGIN_WINDOW", _integer(1))
    take("cookie_secure", "AUTH_COOKIE_SECURE", _boolean)
    take("max_sessions", "AUTH_MAX_SESSIONS", _integer(1))
    take("admin_key", "AUTH_ADMIN_KEY", _hmac_key_string)
    take("trusted_proxies", "AUTH_TRUSTED_PROXIES", _networks)
    take("data_dir", "ROTOR_DATA_DIR", lambda raw: Path(_non_empty(raw)))
    take("db_pool_size", "ROTOR_DB_POOL_SIZE", _integer(1, 1000))
    take("db_connect_timeout", "ROTOR_DB_CONNECT_TIMEOUT", _positive_float)
    take("db_statement_timeout", "ROTOR_DB_STATEMENT_TIMEOUT", _positive_float)
    take("db_prepared_statement_cache", "ROTOR_DB_PREPARED_STATEMENT_CACHE", _boolean)
    take("bcrypt_queue_per_thread", "ROTOR_BCRYPT_QUEUE_PER_THREAD", _integer(1, 10_000))
    take("metrics", "AUTH_METRICS", _boolean)
    take("event_retention_days", "AUTH_EVENT_RETENTION", _integer(1, 36_500))
    take("prune_interval", "AUTH_PRUNE_INTERVAL", _prune_interval)
    values["oauth"] = load_oauth_settings(env)
    values["oidc"] = parse_oidc(env)
    from service.settings.mail import load_mail_settings  # see _default_mail

    values["http"] = load_http_settings(env)

    values["mail"] = load_mail_settings(env)

    values["browsers"] = parse_browsers(env, cookie_secure=values.get("cookie_secure") is not False)
    settings = Settings(**{**_as_dict(defaults), **values})  # type: ignore[arg-type]
    _check_consistency(settings)
    return settings


def _default_mail() -> MailSettings:
    # Imported here: service.settings.mail builds on this module's helpers.
    from service.settings.mail import MailSettings

    return MailSettings()


def _prune_interval(raw: str) -> int | None:
    # 0 means off, like unset, so a deploy template can carry the variable either way.
    return _integer(0, 7 * 86_400)(raw) or None


def _hmac_key_string(raw: str) -> str:
    if len(raw.encode("utf-8")) < 16:
        raise ValueError("at least 16 bytes")
    return raw


# Below this, a lifetime is for watching a client handle expiry, not for production.
TESTING_LIFETIME = 60
_LIFETIMES = {
    "AUTH_ACCESS_TTL": "access_ttl",
    "AUTH_SESSION_IDLE_TTL": "session_idle_ttl",
    "AUTH_SESSION_MAX_TTL": "session_max_ttl",
}


def short_lifetimes(settings: Settings) -> list[str]:
    """The lifetime variables set below a minute: `rotor serve` warns about each."""
    return [
        name
        for name, attribute in _LIFETIMES.items()
        if getattr(settings, attribute) < TESTING_LIFETIME
    ]


def _as_dict(settings: Settings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


def _check_consistency(settings: Settings) -> None:
    """Rules that involve more than one variable."""
    if settings.jwt_alg == "HS256":
        if settings.jwt_private_key_file is not None:
            raise ConfigError(
                "AUTH_JWT_PRIVATE_KEY_FILE: set, but AUTH_JWT_ALG is HS256; "
                "expected an asymmetric algorithm (EdDSA, ES256 or RS256) with a private key"
            )
    elif settings.jwt_private_key_file is None:
        raise ConfigError(
            f"AUTH_JWT_PRIVATE_KEY_FILE: missing, expected a PEM private key for AUTH_JWT_ALG="
            f"{settings.jwt_alg}"
        )


class _ReadRecorder(Mapping[str, str]):
    """An environment that notes every name looked up in it; it holds only `preset`."""

    def __init__(self, preset: Mapping[str, str]) -> None:
        self.names: list[str] = []
        self._preset = dict(preset)

    def __getitem__(self, name: str) -> str:
        self.names.append(name)
        return self._preset[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._preset)

    def __len__(self) -> int:
        return len(self._preset)


# One identity provider named, so that its per-provider variables are read too; they are
# reported with the placeholder the documentation uses.
_EXAMPLE_PROVIDER = "EXAMPLE"
_PRESET = {
    "AUTH_OIDC_PROVIDERS": _EXAMPLE_PROVIDER.lower(),
    f"AUTH_OIDC_{_EXAMPLE_PROVIDER}_CLIENT_IDS": "client",
    f"AUTH_OIDC_{_EXAMPLE_PROVIDER}_ISSUER": "https://issuer.example",
}


def variables() -> tuple[str, ...]:
    """Every environment variable `load_settings` reads, in the order it reads them (for help
    texts and the documentation's check, so neither keeps a list of its own)."""
    recorder = _ReadRecorder(_PRESET)
    load_settings(recorder)
    placeholder = f"_{_EXAMPLE_PROVIDER}_"
    return tuple(dict.fromkeys(name.replace(placeholder, "_<NAME>_") for name in recorder.names))
