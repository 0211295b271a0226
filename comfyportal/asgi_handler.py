"""Django's ASGI handler, for a site whose middleware and views are all synchronous.

Under ASGI Django builds an async middleware chain and crosses between the event loop and
a worker thread at every sync/async boundary: into the first sync middleware, back out
before an async-capable one, into each MiddlewareMixin's hooks, into the view. Each
crossing is a thread hand-off costing CPU on every request. All our HTTP views (pages,
admin, API) are sync, so the whole chain runs in one go in the request's thread. (Live
updates are Channels consumers; they do not pass through here.)

At most WEB_REQUEST_THREADS requests run that chain at once; the others wait on the event
loop without a thread. Python runs one thread at a time, so more threads add no speed, but
each one is another contender for the interpreter against the event loop, which also
relays live job events to WebSockets: a burst of 16 submits would otherwise slow every
progress message on this instance.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler


class SyncSiteASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)
        run_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)
        slots = asyncio.Semaphore(settings.WEB_REQUEST_THREADS)

        async def chain(request):
            async with slots:
                return await run_chain(request)

        self._middleware_chain = chain
