"""Password login that refuses while a username or address is throttled, for pages and API alike."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from accounts import throttle


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        ip = throttle.client_ip(request)
        if username and throttle.login_wait_seconds(username, ip):
            raise PermissionDenied("too many failed logins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and username:
            throttle.record_login_success(username, ip)
        return user


@receiver(user_login_failed)
def _count_failure(sender, credentials, request=None, **kwargs):
    username = credentials.get("username")
    if username:
        throttle.record_login_failure(username, throttle.client_ip(request))
