"""Domain exceptions. Services raise them; the API maps each to one status and `{"detail": …}`."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice

# An answer lists this many problems and says how many more there are, so that a request with
# hundreds of thousands of bad fields cannot get an answer bigger than itself.
MAX_LISTED_ERRORS = 20
MAX_ERROR_TEXT = 500  # characters of a field name or message echoed back


class DomainError(Exception):
    status = 400

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = listed_errors(errors) if errors else errors
        self.headers = headers or {}
        self.extra = extra or {}  # more fields of the answer's body, e.g. a quota's used and limit


class InvalidInput(DomainError):
    status = 400


class Unprocessable(InvalidInput):
    """Well-formed input the service cannot act on (a model file no GPU server has, an
    idempotency key reused with another body)."""

    status = 422


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


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def listed_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """The first MAX_LISTED_ERRORS of ``{field: message}``, long names and messages shortened."""
    return {_short(str(field)): _short(str(message)) for field, message in islice(errors.items(), MAX_LISTED_ERRORS)}


def listed_lines(lines: list[str]) -> list[str]:
    """The first MAX_LISTED_ERRORS lines (shortened), then ``and N more`` if there are others."""
    return _with_more([_short(line) for line in lines[:MAX_LISTED_ERRORS]], len(lines))


def field_errors_detail(errors: Mapping[str, str]) -> str:
    """One readable line naming each field and its rule: ``steps: must be at most 100; …``.

    At most MAX_LISTED_ERRORS fields are named, then ``and N more``.
    """
    listed = [f"{field}: {message}" for field, message in listed_errors(errors).items()]
    return "; ".join(_with_more(listed, len(errors)))


def _with_more(listed: list[str], total: int) -> list[str]:
    hidden = total - len(listed)
    return [*listed, f"and {hidden} more"] if hidden > 0 else listed


class PaymentRequired(DomainError):
    """The balance does not cover the price; `extra` (balance, price) joins the JSON body."""

    status = 402
