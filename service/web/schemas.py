"""Request bodies: parsing (400) and field validation (422) with pydantic."""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from service.domain import emails
from service.domain.errors import InvalidRequest, ValidationFailed

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
# What an address part may not hold: "@" and its NFKC look-alikes, whitespace (spelled out, as
# Python's \s and ECMA-262's differ), control characters and invisible ones. The OpenAPI
# document's Email pattern is exactly this string (tests/unit/test_emails.py).
_EXCLUDED = (
    "@"
    + emails.AT_LOOKALIKES
    + r"\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    + "".join(
        chr(low) if low == high else f"{chr(low)}-{chr(high)}"
        for low, high in emails.INVISIBLE_RANGES
    )
)
EMAIL_PATTERN = f"^[^{_EXCLUDED}]+@[^{_EXCLUDED}]+\\.[^{_EXCLUDED}]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _email(value: str) -> str:
    """The address as typed, trimmed: what is stored and shown (service/domain/emails.py says
    how it is compared)."""
    value = emails.display_form(value)
    if emails.has_invisible(value):
        raise PydanticCustomError(
            "email_invisible", "must not contain invisible or format characters"
        )
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.match(value):
        raise PydanticCustomError("email", "must be an email address")
    return value


def _new_password(value: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        raise PydanticCustomError(
            "password_length",
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )
    return value


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


Email = Annotated[str, AfterValidator(_email)]
NewPassword = Annotated[str, AfterValidator(_new_password)]
# Existing passwords are only ever hashed: any length up to a bound that keeps bcrypt input small.
Password = Annotated[str, StringConstraints(max_length=4096)]
DeviceField = Annotated[str, StringConstraints(max_length=200), AfterValidator(_printable)]
# No length bound: a refresh token string Rotor did not issue, however long, is an invalid grant
# (RefreshToken.parse refuses it at once), not a validation error. The body is at most 64 KiB.
TokenField = str
# Any string up to a bound: a code of the wrong shape is just a wrong code (400 invalid_code).
CodeField = Annotated[str, StringConstraints(max_length=64)]
ProviderField = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Far longer than any provider's ID token (1-2 KB); a body over 64 KiB is 413 first, and a
# string that is not a valid token, of any length up to that, is 401.
IdTokenField = Annotated[str, StringConstraints(max_length=65_536)]
NonceField = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Body(BaseModel):
    # strict: a number is not a string; unknown fields are ignored for forward compatibility.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class RegisterBody(_Body):
    email: Email
    password: NewPassword


class LoginBody(_Body):
    email: Email
    password: Password
    device_name: DeviceField | None = None
    platform: DeviceField | None = None
    transport: Literal["body", "cookie"] = "body"


class RefreshBody(_Body):
    refresh_token: TokenField | None = None


class LogoutBody(_Body):
    scope: Literal["local", "others", "global"] = "local"
    refresh_token: TokenField | None = None


class PasswordChangeBody(_Body):
    current_password: Password
    new_password: NewPassword


class DeleteAccountBody(_Body):
    password: Password


class EmailBody(_Body):
    """POST /v1/password/forgot and POST /v1/email/verify/resend."""

    email: Email


class PasswordResetBody(_Body):
    email: Email
    code: CodeField
    new_password: NewPassword


class EmailVerifyBody(_Body):
    email: Email
    code: CodeField


class IdTokenLoginBody(_Body):
    provider: ProviderField
    id_token: IdTokenField
    nonce: NonceField | None = None
    device_name: DeviceField | None = None
    platform: DeviceField | None = None
    transport: Literal["body", "cookie"] = "body"


class LinkIdentityBody(_Body):
    provider: ProviderField
    id_token: IdTokenField
    nonce: NonceField | None = None


Body = TypeVar("Body", bound=_Body)


def parse_body(raw: bytes, model: type[Body], *, required: bool) -> Body:
    """The validated body; InvalidRequest (400) unless it is a JSON object, ValidationFailed
    (422) naming each bad field."""
    if not raw.strip():
        if required:
            raise InvalidRequest("A JSON object body is required.")
        data: object = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_field_messages(exc)) from None


def _field_messages(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        name = str(error["loc"][0]) if error["loc"] else "body"
        fields.setdefault(name, _message(error["type"], error["msg"]))
    return fields


def _message(kind: str, default: str) -> str:
    if kind == "missing":
        return "is required"
    if kind in ("string_type", "literal_error", "string_too_long"):
        return default[0].lower() + default[1:]
    return default
