"""Auth endpoints, the caller's profile, and user management for admins."""

from __future__ import annotations

from django.db.models import Q
from ninja import Query, Router

from accounts import keys, services
from accounts.auth import AdminAuth
from accounts.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    MeOut,
    RefreshIn,
    TokenIn,
    TokenPairOut,
    UserCreateIn,
    UserOut,
    UserPageOut,
    UserPatchIn,
)
from core.openapi import ErrorOut
from core.pagination import PageParams

auth_router = Router(tags=["auth"])
me_router = Router(tags=["me"])
admin_router = Router(tags=["admin: users"], auth=AdminAuth())
keys_router = Router(tags=["api keys"])


@auth_router.post(
    "/token",
    auth=None,
    response={200: TokenPairOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut},
    summary="Log in: get an access and a refresh token",
)
def token(request, payload: TokenIn):
    return services.issue_tokens(username=payload.username, password=payload.password, request=request)


@auth_router.post(
    "/refresh",
    auth=None,
    response={200: TokenPairOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut},
    summary="Rotate a refresh token",
)
def refresh(request, payload: RefreshIn):
    return services.refresh_tokens(refresh=payload.refresh, request=request)


@auth_router.post("/logout", response={204: None}, summary="Revoke the caller's refresh token")
def logout(request, payload: RefreshIn):
    services.revoke_refresh_token(refresh=payload.refresh, user=request.user)
    return 204, None


@me_router.get("/me", response=MeOut, summary="Who am I: role, limits and today's usage")
def me(request):
    return services.profile(request.user)


@admin_router.get("", response=UserPageOut)
def list_users(request, page: Query[PageParams], search: str = ""):
    users = services.User.objects.order_by("username")
    if search:
        users = users.filter(Q(username__icontains=search) | Q(email__icontains=search))
    return page.paginate(users)


@admin_router.post("", response={201: UserOut, 409: ErrorOut})
def create_user(request, payload: UserCreateIn):
    data = payload.dict()
    user = services.create_user(username=data.pop("username"), password=data.pop("password"), **data)
    return 201, user


@admin_router.get("/{int:user_id}", response=UserOut)
def get_user(request, user_id: int):
    return services.get_user(user_id)


@admin_router.patch("/{int:user_id}", response={200: UserOut, 409: ErrorOut})
def update_user(request, user_id: int, payload: UserPatchIn):
    user = services.get_user(user_id)
    return services.update_user(user=user, changes=payload.dict(exclude_unset=True), actor=request.user)


@admin_router.delete("/{int:user_id}", response={204: None, 409: ErrorOut})
def delete_user(request, user_id: int):
    services.delete_user(user=services.get_user(user_id), actor=request.user)
    return 204, None


def key_out(key, raw: str | None = None) -> dict:
    data = {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "state": keys.state_of(key),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }
    if raw is not None:
        data["key"] = raw
    return data


@keys_router.get("", response=list[ApiKeyOut], summary="My API keys (never the keys themselves)")
def list_keys(request):
    return [key_out(key) for key in keys.keys_of(request.user)]


@keys_router.post("", response={201: ApiKeyCreatedOut}, summary="Create an API key: the answer shows it once")
def create_key(request, payload: ApiKeyIn):
    key, raw = keys.create_key(
        user=request.user, name=payload.name, scopes=list(payload.scopes), expires_in_days=payload.expires_in_days
    )
    return 201, key_out(key, raw)


@keys_router.delete("/{int:key_id}", response={204: None}, summary="Revoke an API key (effective at once)")
def revoke_key(request, key_id: int):
    keys.revoke_key(user=request.user, key_id=key_id)
    return 204, None
