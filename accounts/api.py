"""Auth endpoints, the caller's profile, and user management for admins."""

from __future__ import annotations

from django.db.models import Q
from ninja import Query, Router

from accounts import services
from accounts.auth import AdminAuth
from accounts.schemas import (
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
