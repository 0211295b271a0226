"""Domain exceptions. Services raise them; the API maps each to one status and `{"detail": …}`."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, detail: str, *, errors: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class InvalidInput(DomainError):
    status = 400


class NotAuthenticated(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class TooLarge(DomainError):
    status = 413


class TooManyRequests(DomainError):
    status = 429


def field_errors_detail(errors: dict[str, str]) -> str:
    """One readable line naming every field and its rule: ``steps: must be at most 100; …``."""
    return "; ".join(f"{field}: {message}" for field, message in errors.items())
