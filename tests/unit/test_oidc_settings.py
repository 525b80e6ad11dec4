"""AUTH_OIDC_*: presets, validation, and the variable each error names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.config import ConfigError, load_settings
from service.ops.oidc_keys import lifetime
from service.settings.oidc import Provider


def test_unset_means_no_providers() -> None:
    assert load_settings({}).oidc.providers == ()


def test_apple_and_google_presets_and_a_custom_provider() -> None:
    settings = load_settings(
        {
            "AUTH_OIDC_PROVIDERS": " apple, Google ,corp",
            "AUTH_OIDC_APPLE_CLIENT_IDS": "com.example.app, com.example.web",
            "AUTH_OIDC_GOOGLE_CLIENT_IDS": "1-web.apps.googleusercontent.com",
            "AUTH_OIDC_CORP_ISSUER": "https://login.corp.example/realms/main",
            "AUTH_OIDC_CORP_CLIENT_IDS": "rotor",
        }
    )
    assert settings.oidc.providers == (
        Provider("apple", "https://appleid.apple.com", ("com.example.app", "com.example.web")),
        Provider("google", "https://accounts.google.com", ("1-web.apps.googleusercontent.com",)),
        Provider("corp", "https://login.corp.example/realms/main", ("rotor",)),
    )
    assert settings.oidc.get("corp") is not None
    assert settings.oidc.get("facebook") is None


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000/x"]
)
def test_http_is_allowed_on_loopback_only(issuer: str) -> None:
    env = {
        "AUTH_OIDC_PROVIDERS": "dev",
        "AUTH_OIDC_DEV_ISSUER": issuer,
        "AUTH_OIDC_DEV_CLIENT_IDS": "x",
    }
    assert load_settings(env).oidc.providers[0].issuer == issuer


BAD = {
    "missing_client_ids": ({"AUTH_OIDC_PROVIDERS": "apple"}, "AUTH_OIDC_APPLE_CLIENT_IDS"),
    "empty_client_ids": (
        {"AUTH_OIDC_PROVIDERS": "google", "AUTH_OIDC_GOOGLE_CLIENT_IDS": " , "},
        "AUTH_OIDC_GOOGLE_CLIENT_IDS",
    ),
    "custom_without_issuer": (
        {"AUTH_OIDC_PROVIDERS": "corp", "AUTH_OIDC_CORP_CLIENT_IDS": "x"},
        "AUTH_OIDC_CORP_ISSUER",
    ),
    "http_issuer": (
        {
            "AUTH_OIDC_PROVIDERS": "corp",
            "AUTH_OIDC_CORP_ISSUER": "http://login.corp.example",
            "AUTH_OIDC_CORP_CLIENT_IDS": "x",
        },
        "AUTH_OIDC_CORP_ISSUER",
    ),
    "not_a_url": (
        {
            "AUTH_OIDC_PROVIDERS": "apple",
            "AUTH_OIDC_APPLE_ISSUER": "appleid.apple.com",
            "AUTH_OIDC_APPLE_CLIENT_IDS": "x",
        },
        "AUTH_OIDC_APPLE_ISSUER",
    ),
    "issuer_with_query": (
        {
            "AUTH_OIDC_PROVIDERS": "corp",
            "AUTH_OIDC_CORP_ISSUER": "https://corp.example/?a=b",
            "AUTH_OIDC_CORP_CLIENT_IDS": "x",
        },
        "AUTH_OIDC_CORP_ISSUER",
    ),
    "bad_name": ({"AUTH_OIDC_PROVIDERS": "my-idp"}, "AUTH_OIDC_PROVIDERS"),
    "listed_twice": (
        {"AUTH_OIDC_PROVIDERS": "apple,APPLE", "AUTH_OIDC_APPLE_CLIENT_IDS": "x"},
        "AUTH_OIDC_PROVIDERS",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_values_stop_start_up_naming_the_variable(case: str) -> None:
    env, variable = BAD[case]
    with pytest.raises(ConfigError) as error:
        load_settings(env)
    assert str(error.value).startswith(variable + ":")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 3600),
        ("public, max-age=19836, must-revalidate, no-transform", 19836),
        ("max-age=5", 60),
        ("max-age=99999999", 86400),
        ("no-cache", 60),
        ("private", 3600),
    ],
)
def test_cache_lifetime_respects_max_age_within_bounds(header: str | None, seconds: int) -> None:
    assert lifetime(header) == timedelta(seconds=seconds)
