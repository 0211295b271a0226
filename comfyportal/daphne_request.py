"""Daphne's requests with the body left to Django.

Twisted's `Request` parses every POST form body itself (into `request.args`, which daphne never
reads) before daphne sees the request: a whole multipart upload parsed a second time on the
event loop, and a multipart body it cannot parse (no boundary) answered with an empty 400 that
Django never sees. Twisted's documented `parsePOSTFormSubmission=False` turns that off; daphne
gives no way to pass it, so its request class is replaced here, in this one module.

tests/production/test_daphne_request.py fails when a daphne or Twisted upgrade changes this.
"""

from __future__ import annotations

from daphne import http_protocol


class BodyUnparsedWebRequest(http_protocol.WebRequest):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


def install() -> None:
    """Make daphne build BodyUnparsedWebRequest for each request (it looks the name up per connection)."""
    http_protocol.WebRequest = BodyUnparsedWebRequest
