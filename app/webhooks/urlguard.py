"""SSRF guard for webhook URLs: which URLs and addresses a delivery may go to.

A user-supplied URL must not reach the operator's own network (databases, admin pages, the cloud
metadata service at 169.254.169.254). So: https only, no credentials in the URL, no odd numeric
host spellings, and every address the name resolves to must be public — checked after
resolution, including the IPv4 address inside IPv4-mapped, 6to4, Teredo and NAT64 IPv6 forms.
The transport (`transport.py`) then connects to exactly the address checked here, so a second,
different DNS answer (rebinding) never gets a connection.

The operator may allow http and private addresses (RADIOSILENCE_WEBHOOK_ALLOW_PRIVATE=true),
e.g. for a consumer on the same machine.

The same `UrlGuard` checks the IMAP and SMTP hosts of mailboxes (`services.mailhosts`), with
its own refusal words and setting (RADIOSILENCE_IMAP_ALLOW_PRIVATE).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT = 5.0
RESOLVE_CACHE_SECONDS = 10.0
ALLOW_HINT = "an operator can allow them with RADIOSILENCE_WEBHOOK_ALLOW_PRIVATE=true"
WEBHOOK_REFUSAL = f"webhooks go to public addresses only ({ALLOW_HINT})"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Hosts made only of digits, dots and hex: inet_aton would read "2130706433", "0x7f.1" or
# "127.1" as 127.0.0.1. Only the canonical dotted quad is accepted as an IPv4 literal.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*$", re.IGNORECASE)


class UrlRefused(ValueError):
    """The URL or one of its addresses may not receive webhooks; the message says why."""


@dataclass(frozen=True, kw_only=True)
class Target:
    scheme: str
    host: str  # ASCII (IDNA) form, as resolved and sent in SNI
    port: int


def address_problem(ip: IPAddress) -> str | None:
    """Why a delivery must not connect to `ip`, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (inside {ip})" if problem else None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return f"{ip} is a reserved address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def host_and_port(url: httpx.URL) -> tuple[str, int]:
    """The URL's host as resolved and sent in SNI (ASCII, lower case, no trailing dot) and its
    port (the scheme's default when none is given). Its form is not checked: see parse_target."""
    host = url.raw_host.decode("ascii").rstrip(".").lower()
    return host, url.port or (443 if url.scheme == "https" else 80)


def parse_target(url: str | httpx.URL, *, allow_private: bool) -> Target:
    """Check the URL's form (not yet its addresses)."""
    if isinstance(url, str):
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            url = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise UrlRefused(f"the URL is not valid: {exc}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if url.scheme not in schemes:
        hint = "" if allow_private else f" ({ALLOW_HINT} for http)"
        raise UrlRefused(f"the URL must start with https://{hint}")
    if url.userinfo:
        raise UrlRefused(
            "the URL must not carry a user name or password: the signature authenticates us"
        )
    host, port = host_and_port(url)
    if not host:
        raise UrlRefused("the URL has no host name")
    if _NUMERIC_HOST.match(host) and not _is_ipv4_literal(host):
        raise UrlRefused(f"{host!r} is not a canonical IP address: write it as a dotted quad")
    return Target(scheme=url.scheme, host=host, port=port)


def _is_ipv4_literal(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host:port, in its order of preference."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlGuard:
    """Resolves a host once per cache period and hands out only addresses that passed."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        cache_seconds: float = RESOLVE_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        refusal: str = WEBHOOK_REFUSAL,
    ) -> None:
        self.allow_private = allow_private
        self.refusal = refusal  # what follows "HOST resolves to PROBLEM: " in a refusal
        self._resolver = resolver
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}

    async def check_url(self, url: str) -> Target:
        """The URL's form and every address it resolves to; raises UrlRefused."""
        target = parse_target(url, allow_private=self.allow_private)
        await self.addresses(target.host, target.port)
        return target

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The checked addresses to connect to; raises UrlRefused if any answer is forbidden."""
        literal = ip_literal(host)
        if literal is not None:
            found = [literal]
        else:
            key = (host, port)
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self._monotonic():
                return cached[1]
            found = await self._resolve(host, port)
        if not self.allow_private:
            # Every answer is checked, not only the first: the OS may pick any of them.
            for ip in found:
                problem = address_problem(ip)
                if problem:
                    raise UrlRefused(f"{host} resolves to {problem}: {self.refusal}")
        if literal is None and self._cache_seconds > 0:
            self._cache[(host, port)] = (self._monotonic() + self._cache_seconds, found)
        return found

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                answers = await self._resolver(host, port)
        except (OSError, TimeoutError) as exc:
            raise UrlRefused(f"could not resolve {host}: {exc or 'timed out'}") from None
        found = [ip for ip in (ip_literal(a.split("%", 1)[0]) for a in answers) if ip]
        if not found:
            raise UrlRefused(f"could not resolve {host}: no addresses")
        return found
