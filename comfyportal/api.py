"""The one NinjaAPI under /api/: routers of every app, bearer auth, one JSON error shape."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import AuthenticationError, HttpError, ValidationError

from accounts import api as accounts_api
from accounts.auth import JWTAuth
from billing import api as billing_api
from comfyportal.openapi_workflows import PortalNinjaAPI
from core.errors import DomainError, field_errors_detail, listed_errors
from jobs import api as jobs_api
from nodes import api as nodes_api
from usage import api as usage_api
from webhooks import api as webhooks_api
from workflows import api as workflows_api

api = PortalNinjaAPI(
    title="comfyportal API",
    version="1.0",
    description="Run standardized ComfyUI workflows on a pool of GPU nodes. "
    "Get a token at POST /api/auth/token and send it as `Authorization: Bearer <access>`, "
    "or create an API key (POST /api/keys, or the site's API keys page) and send `Authorization: Bearer cpk_…`.",
    auth=JWTAuth(),
    urls_namespace="api",
)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError):
    body: dict = {"detail": exc.detail}
    if exc.errors:
        body["errors"] = exc.errors
    body.update(getattr(exc, "extra", {}))  # e.g. a 402's balance and price
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
        errors[".".join(loc) or "body"] = error.get("msg", "invalid")
    body = {"detail": field_errors_detail(errors), "errors": listed_errors(errors)}
    return api.create_response(request, body, status=422)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


api.add_router("/auth", accounts_api.auth_router)
api.add_router("/", accounts_api.me_router)
api.add_router("/admin/users", accounts_api.admin_router)
api.add_router("/keys", accounts_api.keys_router)
api.add_router("/admin/nodes", nodes_api.router)
api.add_router("/", workflows_api.router)
api.add_router("/admin", workflows_api.admin_router)
api.add_router("/", jobs_api.router)
api.add_router("/admin", jobs_api.admin_router)
api.add_router("/webhooks", webhooks_api.router)
api.add_router("/", usage_api.router)
api.add_router("/", billing_api.router)
