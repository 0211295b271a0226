"""Checks on a node's base URL: http(s), a host, optional port and path prefix, no credentials."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalize_base_url(value: str) -> str:
    """Return the URL without a trailing slash, or raise ValueError saying what is wrong."""
    value = (value or "").strip()
    if not value:
        raise ValueError("is required")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"}:
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("must name a host, e.g. http://10.0.0.5:8188")
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValueError("must not contain credentials; use the auth header field instead")
    try:
        parts.port  # noqa: B018 (reading it validates the port)
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    return value.rstrip("/")
