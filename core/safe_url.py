"""Outgoing requests to addresses users give (webhooks) must not reach the portal's own network.

`check_url` refuses a URL that is not plain http(s), carries credentials, or whose host
resolves to any address that is not globally routable: loopback, private (RFC 1918, fc00::/7),
link-local (169.254/16 — the cloud metadata services — and fe80::/10), carrier-grade NAT,
multicast, reserved, unspecified, and IPv4-mapped or NAT64 forms of those. Every address the
name resolves to must pass, so a name with one public and one private address is refused.

Call it when the URL is saved and again for each request: `resolve_safely` returns the checked
address, and the request is sent to that address (not to the name, which could resolve
elsewhere a moment later: DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class UnsafeUrl(ValueError):
    """The URL is malformed or would reach an address that is not public; the message says which."""


@dataclass(frozen=True)
class Target:
    """Where to send a request: the URL's parts, and the checked address to connect to."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, at least "/"
    address: str  # an IP address (IPv6 without brackets)

    @property
    def pinned_url(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL, or UnsafeUrl naming the problem."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"must be an http or https URL of at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeUrl("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("must start with http:// or https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrl("must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("must name a host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrl(f"host {host} does not resolve") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnsafeUrl(f"host {host} does not resolve")
    return addresses


def resolve_safely(url: str, *, allow_private: bool = False) -> Target:
    """Check the URL and every address its host resolves to; the Target to connect to."""
    scheme, host, port, path = parse(url)
    if not allow_private and (host in METADATA_HOSTS or host == "localhost" or host.endswith(".localhost")):
        raise UnsafeUrl(f"must not point at {host}")
    addresses = resolve(host, port)
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise UnsafeUrl(f"resolves to {refused[0]}, which is not a public address")
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def check_url(url: str, *, allow_private: bool = False) -> str:
    """The URL if it is safe to save (resolving it now), else UnsafeUrl."""
    resolve_safely(url, allow_private=allow_private)
    return url
