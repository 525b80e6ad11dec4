"""Settings from the environment: defaults, validation, one-line errors naming the variable."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from service.config import ConfigError, Settings, load_settings
from service.domain.keys import generate_private_key_pem


def test_defaults_match_the_contract() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.jwt_alg) == ("127.0.0.1", 8080, "HS256")
    assert (settings.issuer, settings.audience) == ("rotor", "rotor")
    assert (settings.access_ttl, settings.session_idle_ttl, settings.session_max_ttl) == (
        900,
        1_209_600,
        7_776_000,
    )
    assert (settings.reuse_grace, settings.bcrypt_rounds) == (10, 12)
    assert (settings.login_max_failures, settings.login_window) == (10, 900)
    assert settings.cookie_secure is True and settings.max_sessions == 50
    assert settings.admin_key is None and settings.trusted_proxies == ()
    assert settings.database_url is None and settings.jwt_secret is None


def test_values_are_parsed() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u:p@db:5432/rotor",
            "AUTH_PORT": "9000",
            "AUTH_JWT_SECRET": "s" * 32,
            "AUTH_REUSE_GRACE": "0",
            "AUTH_COOKIE_SECURE": "false",
            "AUTH_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
            "AUTH_ADMIN_KEY": "k" * 16,
        }
    )
    assert settings.port == 9000 and settings.jwt_secret == b"s" * 32
    assert settings.reuse_grace == 0 and settings.cookie_secure is False
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTH_PORT", "eighty"),
        ("AUTH_PORT", "70000"),
        ("AUTH_JWT_ALG", "HS512"),
        ("AUTH_JWT_SECRET", "too-short"),
        ("AUTH_ACCESS_TTL", "-5"),
        ("AUTH_REUSE_GRACE", "1.5"),
        ("AUTH_BCRYPT_ROUNDS", "3"),
        ("AUTH_BCRYPT_ROUNDS", "32"),
        ("AUTH_COOKIE_SECURE", "maybe"),
        ("AUTH_MAX_SESSIONS", "0"),
        ("AUTH_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"),
        ("AUTH_JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("AUTH_ADMIN_KEY", "short"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    if "SECRET" in name or "KEY" in name:
        assert value not in message  # secrets are never echoed


def test_asymmetric_algorithm_needs_a_private_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^AUTH_JWT_PRIVATE_KEY_FILE: missing"):
        load_settings({"AUTH_JWT_ALG": "EdDSA"})
    key = tmp_path / "key.pem"
    key.write_bytes(generate_private_key_pem("EdDSA"))
    settings = load_settings({"AUTH_JWT_ALG": "EdDSA", "AUTH_JWT_PRIVATE_KEY_FILE": str(key)})
    assert settings.jwt_private_key_file == key
    with pytest.raises(ConfigError, match="^AUTH_JWT_PRIVATE_KEY_FILE"):
        load_settings({"AUTH_JWT_PRIVATE_KEY_FILE": str(key)})  # with HS256


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


# --- observability and pruning ------------------------------------------------------------


def test_observability_settings_defaults_and_validation() -> None:
    defaults = load_settings({})
    assert defaults.metrics is False
    assert defaults.event_retention_days == 90
    settings = load_settings({"AUTH_METRICS": "true", "AUTH_EVENT_RETENTION": "30"})
    assert settings.metrics is True
    assert settings.event_retention_days == 30
    with pytest.raises(ConfigError, match="AUTH_METRICS"):
        load_settings({"AUTH_METRICS": "maybe"})
    for bad in ("0", "-1", "ninety", "1.5"):
        with pytest.raises(ConfigError, match="AUTH_EVENT_RETENTION"):
            load_settings({"AUTH_EVENT_RETENTION": bad})


# AUTH_PRUNE_INTERVAL: unset or 0 is off, otherwise whole seconds, validated like the rest.
@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("0", None), ("300", 300)])
def test_prune_interval(raw: str | None, expected: int | None) -> None:
    env = {} if raw is None else {"AUTH_PRUNE_INTERVAL": raw}
    assert load_settings(env).prune_interval == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "1.5", str(7 * 86_400 + 1)])
def test_invalid_prune_interval_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^AUTH_PRUNE_INTERVAL: invalid value"):
        load_settings({"AUTH_PRUNE_INTERVAL": raw})


# --- browsers: CORS and the refresh cookie ------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AUTH_CORS_ORIGINS": "*"}, "AUTH_CORS_ORIGINS"),
        ({"AUTH_CORS_ORIGINS": "https://app.example.com/app"}, "AUTH_CORS_ORIGINS"),
        ({"AUTH_CORS_ORIGINS": "https://ok.example, app.example.com"}, "AUTH_CORS_ORIGINS"),
        ({"AUTH_COOKIE_SAMESITE": "None", "AUTH_COOKIE_SECURE": "false"}, "AUTH_COOKIE_SAMESITE"),
        ({"AUTH_COOKIE_SAMESITE": "sometimes"}, "AUTH_COOKIE_SAMESITE"),
        ({"AUTH_COOKIE_PATH": "auth/v1"}, "AUTH_COOKIE_PATH"),
        ({"AUTH_COOKIE_DOMAIN": "a;b"}, "AUTH_COOKIE_DOMAIN"),
    ],
    ids=["star", "path", "no-scheme", "none-insecure", "samesite-word", "relative-path", "domain"],
)
def test_browser_settings_refuse_to_start(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        load_settings(env)


def test_browser_settings_parse() -> None:
    browsers = load_settings(
        {
            "AUTH_CORS_ORIGINS": "http://localhost:3000, https://App.Example.com:443",
            "AUTH_COOKIE_SAMESITE": "lax",
            "AUTH_COOKIE_DOMAIN": ".Example.com",
            "AUTH_COOKIE_PATH": "/auth/v1/",
        }
    ).browsers
    assert browsers.cors_origins == {"http://localhost:3000", "https://app.example.com"}
    assert (browsers.cookie_samesite, browsers.cookie_domain, browsers.cookie_path) == (
        "Lax",
        "example.com",
        "/auth/v1",
    )
    assert load_settings({}).browsers.cookie_path == "/v1"
