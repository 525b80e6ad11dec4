"""AUTH_INTROSPECTION_CLIENTS and the AUTH_ISSUER rule of the OAuth metadata."""

from __future__ import annotations

import pytest

from service.config import ConfigError, load_settings
from service.settings.oauth import issuer_url, issuer_warning, load_oauth_settings

SECRET = "s" * 16


def test_clients_are_parsed_and_secrets_kept_as_digests() -> None:
    oauth = load_settings({"AUTH_INTROSPECTION_CLIENTS": f"a:{SECRET}, b:{SECRET}x:y"}).oauth
    assert [client.client_id for client in oauth.introspection_clients] == ["a", "b"]
    assert SECRET not in repr(oauth)
    assert all(len(client.secret_digest) == 32 for client in oauth.introspection_clients)
    assert oauth.accepts("a", (SECRET,))
    assert oauth.accepts("b", ("nope", f"{SECRET}x:y"))  # a secret may hold ':'
    assert not oauth.accepts("a", (f"{SECRET}x:y",))
    assert not oauth.accepts("c", (SECRET,))
    assert not oauth.accepts("a", ())
    assert load_settings({}).oauth.introspection_clients == ()
    assert load_oauth_settings({"AUTH_INTROSPECTION_CLIENTS": " "}).introspection_clients == ()


@pytest.mark.parametrize(
    "raw", ["a", f":{SECRET}", "a:short", f"a:{SECRET},a:{SECRET}", f"a:{SECRET},b"]
)
def test_invalid_clients_stop_start_up_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_settings({"AUTH_INTROSPECTION_CLIENTS": raw})
    assert str(failure.value).startswith("AUTH_INTROSPECTION_CLIENTS: ")
    assert SECRET not in str(failure.value)


@pytest.mark.parametrize(
    ("issuer", "usable"),
    [
        ("https://auth.example.com", True),
        ("https://auth.example.com/tenant", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:3000", True),
        ("http://[::1]:8080", True),
        ("rotor", False),
        ("http://auth.example.com", False),
        ("http://192.168.1.2", False),
        ("https://auth.example.com?tenant=1", False),
        ("https://auth.example.com#x", False),
        ("https://auth.example.com:notaport", False),
        ("https:///nohost", False),
    ],
)
def test_issuer_rule(issuer: str, usable: bool) -> None:
    assert (issuer_url(issuer) == issuer) is usable
    warning = issuer_warning(issuer)
    assert (warning is None) is usable
    if warning is not None:
        assert warning.startswith("AUTH_ISSUER: ")
