"""Origin check for WebSockets that still lets programs in.

Browsers always send `Origin` on a WebSocket handshake, so a cross-site page cannot ride a
user's session cookie: that Origin must be one of ALLOWED_HOSTS. Programs (API clients with
`?token=`) send no Origin and carry their own credential, so a missing Origin is allowed.
"""

from __future__ import annotations

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application):
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)
