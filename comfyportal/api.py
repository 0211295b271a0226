"""The one NinjaAPI under /api/: routers of every app, bearer auth, one JSON error shape."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from accounts import api as accounts_api
from accounts.auth import JWTAuth
from billing import api as billing_api
from comfyportal.openapi_workflows import PortalNinjaAPI
from core.errors import DomainError, field_errors_detail, listed_errors
from core.openapi import pattern_rule
from jobs import api as jobs_api
from nodes import api as nodes_api
from usage import api as usage_api
from webhooks import api as webhooks_api
from workflows import api as workflows_api


class BodyNotAnObject(ValueError):
    pass


class ObjectBodyParser(Parser):
    """JSON bodies must be objects: ninja would otherwise read `[]` or `"x"` as an empty object
    and, for a PATCH whose fields are all optional, answer 200 without a change."""

    def parse_body(self, request: HttpRequest):
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise BodyNotAnObject("body: must be a JSON object.")
        return data


# Each operation's error answers are declared in the OpenAPI document (core/openapi.py), and
# each active workflow gets a typed operation (comfyportal/openapi_workflows.py).
api = PortalNinjaAPI(
    title="comfyportal API",
    version="1.0",
    description="Run standardized ComfyUI workflows on a pool of GPU servers (ComfyUI). "
    "Get a token at POST /api/auth/token and send it as `Authorization: Bearer <access>`, "
    "or create an API key (POST /api/keys, or the site's API keys page) and send `Authorization: Bearer cpk_…`.",
    auth=JWTAuth(),
    urls_namespace="api",
    parser=ObjectBodyParser(),
    # Swagger UI from ninja's static files (ninja is in INSTALLED_APPS), without the online
    # validator's badge: it would load an image from validator.swagger.io.
    docs=Swagger(settings={"validatorUrl": None}),
)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError):
    body: dict = {"detail": exc.detail, **exc.extra}
    if exc.errors:
        body["errors"] = exc.errors
    response = api.create_response(request, body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError):
    return api.create_response(request, {"detail": "Authentication required: send a valid access token."}, status=401)


@api.exception_handler(ValidationError)
def invalid_request(request: HttpRequest, exc: ValidationError):
    errors = {}
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", []) if part not in ("body", "payload", "query", "path", "form")]
        rule = (
            pattern_rule(error.get("ctx", {}).get("pattern", ""))
            if error.get("type") == "string_pattern_mismatch"
            else None
        )
        errors[".".join(loc) or "body"] = rule or error.get("msg", "invalid")
    body = {"detail": field_errors_detail(errors), "errors": listed_errors(errors)}
    return api.create_response(request, body, status=422)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    # ninja wraps any parser error in "Cannot parse request body"; ours says what is wrong.
    detail = str(exc.__cause__) if isinstance(exc.__cause__, BodyNotAnObject) else str(exc)
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


api.add_router("/auth", accounts_api.auth_router)
api.add_router("/", accounts_api.me_router)
api.add_router("/admin/users", accounts_api.admin_router)
api.add_router("/keys", accounts_api.keys_router)
api.add_router("/admin/nodes", nodes_api.router)
api.add_router("/admin/models", nodes_api.models_router)
api.add_router("/", workflows_api.router)
api.add_router("/admin", workflows_api.admin_router)
api.add_router("/", jobs_api.router)
api.add_router("/admin", jobs_api.admin_router)
api.add_router("/webhooks", webhooks_api.router)
api.add_router("/", usage_api.router)
api.add_router("/", billing_api.router)
