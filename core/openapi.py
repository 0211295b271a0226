"""The error answers of every operation, declared in /api/openapi.json from what the operation takes.

Every error under /api/ is ``{"detail": …}`` (``ErrorOut``). Which statuses an operation can give
follows from its shape, so they are added here for every operation, present and future:

- 400 always: a NUL character in any query or body value, an unreadable multipart body, or a value
  that breaks a rule of the service;
- 401, 403 and 429 when it requires authentication (no valid token; an admin-only operation or a
  blocked account; the per-user and per-address rate limits);
- 404 when its path names an object; 413 and 422 when it takes a body; 422 when it takes parameters.

Statuses particular to one operation (409 of the last-admin guard, 429 of the token endpoints,
404 of a slug in the body) are declared by the operation itself in ``response={…, 409: ErrorOut}``;
an operation's own declaration of a status wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus

from ninja import NinjaAPI, Schema
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation

BODY_SOURCES = {"body", "form", "file"}

DESCRIPTIONS = {
    400: "A value breaks a rule, or the request cannot be read (NUL characters, a broken multipart body).",
    401: "No valid access token: send `Authorization: Bearer <access>`.",
    403: "Not allowed: the operation is for admins, or the account is blocked.",
    404: "No such object (or it is not yours).",
    409: "The change conflicts with the current state.",
    413: "The body is larger than allowed.",
    422: "A parameter or body field is missing or has the wrong type; `errors` names each.",
    429: "Too many requests: retry after `Retry-After` seconds.",
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "string"}},
}


class ErrorOut(Schema):
    detail: str
    errors: dict[str, str] | None = None


def error_statuses(operation: Operation) -> set[int]:
    """The error statuses an operation can answer with, judged from its auth, parameters and body."""
    sources = {model.__ninja_param_source__ for model in operation.models if model.model_fields}
    statuses = {400}
    if operation.auth_callbacks:
        statuses |= {401, 403, 429}
    if "path" in sources:
        statuses.add(404)
    if sources & BODY_SOURCES:
        statuses |= {413, 422}
    if sources:
        statuses.add(422)
    return statuses


class ErrorsDocumentedSchema(OpenAPISchema):
    def responses(self, operation: Operation) -> dict[int, dict]:
        result = super().responses(operation)
        if "ErrorOut" not in self.schemas:
            self.schemas["ErrorOut"] = self._create_schema_from_model(ErrorOut, mode="serialization")[0]
        content = {self.api.renderer.media_type: {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for status in sorted(error_statuses(operation) - set(result)):
            result[status] = {"description": DESCRIPTIONS.get(status, HTTPStatus(status).phrase), "content": content}
        for status, response in result.items():
            if status == 429:
                response.setdefault("headers", RETRY_AFTER)
        return dict(sorted(result.items()))

    def request_body(self, operation: Operation) -> dict:
        # A multipart body given whole in `openapi_extra` (file parts named at run time) replaces
        # the one ninja reads from the declared form fields, which it would call url-encoded.
        body = super().request_body(operation)
        given = ((operation.openapi_extra or {}).get("requestBody") or {}).get("content") or {}
        if body and "multipart/form-data" in given:
            body["content"] = {}
        return body


class ErrorsDocumentedAPI(NinjaAPI):
    """A NinjaAPI whose OpenAPI document declares each operation's error answers (see the module)."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None):
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return ErrorsDocumentedSchema(api=self, path_prefix=path_prefix)


# What each pattern made here means, in words: a 422 names the rule, not the regular expression.
PATTERN_RULES: dict[str, str] = {}


def pattern_rule(pattern: str) -> str | None:
    """The readable rule of a pattern made by one_of_pattern or list_of_pattern, else None."""
    return PATTERN_RULES.get(pattern)


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


def one_of_pattern(words: Iterable[str]) -> str:
    """A regular expression (the same in Python, pydantic and JSON Schema) for one of ``words`` in
    any letter case: a parameter that the server reads case-insensitively declares exactly what it
    accepts, so that the document and the server agree on every value."""
    words = list(words)
    pattern = "^(?:" + "|".join(_any_case(w) for w in words) + ")$"
    PATTERN_RULES[pattern] = f"must be one of {', '.join(w.lower() for w in words)} (any letter case)"
    return pattern


def list_of_pattern(words: Iterable[str]) -> str:
    """Like one_of_pattern, for a comma-separated list (spaces and empty items allowed; "" too)."""
    words = list(words)
    word = "(?:" + "|".join(_any_case(w) for w in words) + ")"
    pattern = f"^ *(?:{word} *)?(?:, *(?:{word} *)?)*$"
    PATTERN_RULES[pattern] = f"must be a comma-separated list of {', '.join(words)} (any letter case)"
    return pattern
