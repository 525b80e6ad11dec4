"""Domain errors. Each has a stable code (docs/reference/errors.md); the web layer maps them to
HTTP statuses.

Messages are written for clients: they never contain a secret, SQL or a stack trace.
"""

from __future__ import annotations


class AuthError(Exception):
    """Base of every error a client may see."""

    code: str = "error"
    message: str = "The request failed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class InvalidRequest(AuthError):
    code = "invalid_request"
    message = "The request body must be a JSON object."


class UnsupportedMediaType(AuthError):
    """A /v1/* body that is not declared as JSON: a cross-site form or text/plain POST (which a
    browser sends without a CORS preflight) must not log in, register or refresh."""

    code = "unsupported_media_type"
    message = "The request body must be sent with Content-Type: application/json."


class RequestTimeout(AuthError):
    """The request body did not arrive within AUTH_REQUEST_READ_TIMEOUT seconds."""

    code = "request_timeout"
    message = "The request body did not arrive in time."


class ValidationFailed(AuthError):
    code = "validation_error"
    message = "Some fields are invalid."

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields


class EmailTaken(AuthError):
    code = "email_taken"
    message = "An account with this email already exists."


class InvalidCredentials(AuthError):
    code = "invalid_credentials"
    message = "The email or password is incorrect."


class WrongPassword(InvalidCredentials):
    """A re-authentication (password change, account deletion) with the wrong password."""

    message = "The password is incorrect."


class AccountDisabled(AuthError):
    code = "account_disabled"
    message = "This account is disabled."


class RateLimited(AuthError):
    code = "rate_limited"
    message = "Too many failed logins; try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class InvalidGrant(AuthError):
    code = "invalid_grant"
    message = "The refresh token is invalid, expired or revoked."


class TokenReused(AuthError):
    code = "token_reused"
    message = "This refresh token was already used; the session has been revoked."


class InvalidToken(AuthError):
    code = "invalid_token"
    message = "The access token is missing, invalid or expired."


class CsrfFailed(AuthError):
    code = "csrf_failed"
    message = "Requests authenticated by cookie must carry the header X-CSRF-Token: 1."


class NotFound(AuthError):
    code = "not_found"
    message = "Not found."


class ServiceUnavailable(AuthError):
    code = "service_unavailable"
    message = "The service is temporarily unavailable; try again shortly."

    def __init__(self, message: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidCode(AuthError):
    """A wrong, expired, used or dead code, or an unknown email: one answer for all."""

    code = "invalid_code"
    message = "The code is invalid or has expired; request a new one."


class EmailNotVerified(AuthError):
    code = "email_not_verified"
    message = "Verify the email address before logging in."


class IdentityConflict(AuthError):
    code = "identity_conflict"
    message = (
        "This identity cannot be linked: it belongs to another account, or the account with its"
        " email has not verified that address."
    )


class LastLoginMethod(AuthError):
    code = "last_login_method"
    message = "This is the account's last way to sign in; set a password or link another first."
