"""Every error a client can see has its own explicit status and a stable code."""

from __future__ import annotations

from service.domain import errors
from service.web.middlewares import STATUS_OF_ERROR


def _all_subclasses(base: type[errors.AuthError]) -> set[type[errors.AuthError]]:
    found: set[type[errors.AuthError]] = set()
    for sub in base.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_error_class_has_an_explicit_status() -> None:
    classes = _all_subclasses(errors.AuthError)
    assert classes, "no error classes found"
    missing = sorted(cls.__name__ for cls in classes if cls not in STATUS_OF_ERROR)
    assert missing == [], f"error classes without an explicit status: {missing}"


def test_every_error_class_has_its_own_code() -> None:
    for cls in _all_subclasses(errors.AuthError):
        assert cls.code != errors.AuthError.code, f"{cls.__name__} has no code of its own"
        assert cls.code.isascii() and cls.code == cls.code.lower()


def test_statuses_are_client_or_unavailable_errors() -> None:
    for cls, status in STATUS_OF_ERROR.items():
        assert 400 <= status < 500 or status == 503, (cls.__name__, status)


def test_wrong_password_is_403_with_the_invalid_credentials_code() -> None:
    # Re-authentication (password change, account deletion): 403, not login's 401.
    assert STATUS_OF_ERROR[errors.WrongPassword] == 403
    assert errors.WrongPassword.code == "invalid_credentials"
    assert STATUS_OF_ERROR[errors.InvalidCredentials] == 401
