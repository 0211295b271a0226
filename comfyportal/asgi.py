"""ASGI entry point: Django (pages, API, admin) over HTTP, Channels consumers over WebSocket."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comfyportal.settings")

import django
from django.conf import settings
from django.urls import get_resolver

from comfyportal.asgi_handler import SyncSiteASGIHandler
from comfyportal.daphne_access import install as log_access_through_logging
from comfyportal.daphne_backlog import install as listen_with_a_backlog
from comfyportal.daphne_request import install as leave_request_bodies_to_django
from comfyportal.static_files import StaticFilesHandler
from core.gc_tuning import freeze_startup_objects

django.setup(set_prefix=False)
leave_request_bodies_to_django()
log_access_through_logging()
listen_with_a_backlog()
django_application = SyncSiteASGIHandler()
if settings.SERVE_STATIC:  # behind nginx in production, /static/ is served from STATIC_ROOT
    django_application = StaticFilesHandler(django_application)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware, SessionMiddleware  # noqa: E402

from comfyportal.routing import websocket_urlpatterns  # noqa: E402
from comfyportal.ws_origin import BrowserOriginValidator  # noqa: E402
from jobs.ws_auth import SessionAuthMiddleware, TokenAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": BrowserOriginValidator(
            CookieMiddleware(
                SessionMiddleware(SessionAuthMiddleware(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))))
            )
        ),
    }
)

# Load every view and API schema now, then exempt them all from the garbage collector, so
# that a full collection never holds up live progress (see gc_tuning).
get_resolver().url_patterns  # noqa: B018 (the property loads every URLconf)
freeze_startup_objects()
