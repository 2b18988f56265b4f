"""The exception tree. Every error's message says what happened and what to do about it.

RadioSilenceError
├── ConfigError              a setting is missing or invalid (start-up stops)
├── NotFound                 the thing does not exist, or belongs to another user
├── Conflict                 the request clashes with the current state
├── InvalidInput             a value is well-formed but not acceptable
├── AuthError                bad or missing credentials for our own API
├── RateLimited              too many attempts: wait `retry_after` seconds
└── MailServerError          talking to the rep's IMAP server failed
    ├── MailAuthError        the server refused the login
    ├── MailConnectionError  could not connect, or the connection dropped
    ├── MailTLSError         the server's certificate could not be verified
    ├── MailAnswerTooLarge   an answer exceeded one of this client's own bounds
    └── MailHostRefused      the host is not an address mail may go to (private, loopback …)
"""

from __future__ import annotations


class RadioSilenceError(Exception):
    """Base of every error the application raises on purpose."""

    default_message = "something went wrong"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(RadioSilenceError):
    default_message = "invalid configuration: check the RADIOSILENCE_ settings and .env"


class NotFound(RadioSilenceError):
    default_message = "not found"


class Conflict(RadioSilenceError):
    default_message = "the request conflicts with the current state"


class InvalidInput(RadioSilenceError):
    default_message = "invalid input"


class AuthError(RadioSilenceError):
    default_message = "missing or invalid credentials: send 'Authorization: Bearer <token>'"


class RateLimited(RadioSilenceError):
    default_message = "too many attempts: wait a moment and try again"

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class MailServerError(RadioSilenceError):
    default_message = "the mail server could not be reached"


class MailAuthError(MailServerError):
    default_message = "the mail server refused the login: check the username and (app) password"


class MailConnectionError(MailServerError):
    default_message = "could not connect to the mail server: check host, port and security"


class MailTLSError(MailServerError):
    default_message = (
        "the mail server's TLS certificate could not be verified: "
        "fix the certificate or configure RADIOSILENCE_IMAP_CA_FILE"
    )


class MailAnswerTooLarge(MailServerError):
    """Our limit, not the server's refusal: the message names the bound that was hit."""

    default_message = "the mail server's answer was larger than this client reads"


class MailHostRefused(MailServerError):
    default_message = (
        "the mail server's address is not a public one: "
        "an operator can allow private ones with RADIOSILENCE_IMAP_ALLOW_PRIVATE=true"
    )
