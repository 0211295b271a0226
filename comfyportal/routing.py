from django.urls import path, re_path

from jobs.consumers import JobsConsumer


async def refuse_unknown_path(scope, receive, send):
    """Refuse a WebSocket to a path we do not serve (channels' router would raise and log a
    traceback for each); a close before accepting is a 403 answer to the handshake."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 4404})


websocket_urlpatterns = [
    path("ws/jobs/", JobsConsumer.as_asgi()),
    re_path(r"", refuse_unknown_path),
]
