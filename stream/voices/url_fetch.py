"""Fetching reference clips by URL for the HTTP API, without turning the server into an open proxy.

Rules (each refusal is one `ProtocolError` with a 4xx status naming the reason):
- http and https only, no credentials in the URL;
- the host is resolved here and every address it resolves to must be globally routable: loopback,
  private, link-local (cloud metadata at 169.254.169.254 included), shared (CGNAT), multicast,
  reserved and unspecified addresses are refused unless `Settings.allow_private_urls` is set. The
  check runs inside the connection itself (a guarded httpcore network backend), so the address
  that was checked is the one connected to: DNS rebinding cannot slip a second answer in;
- redirects are followed by hand (at most `MAX_REDIRECTS`), every hop under the same rules;
- the body is capped at `Limits.max_reference_bytes` (413) and the whole fetch at
  `Limits.reference_fetch_timeout_s`;
- the clip is decoded and validated like an upload (`reference_audio.decode_clip`, 415 on failure).

Fetched clips are cached by URL: within `Limits.reference_url_ttl_s` a URL is not fetched again;
after that it is revalidated with its ETag / Last-Modified (a 304 keeps the cached clip). Prepared
voice conditioning is cached by clip content further down, so an unchanged clip is never re-prepared.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore

from stream.audio.reference import ReferenceClip, decode_clip
from stream.core.errors import ReferenceTooLarge, ReferenceUrlRefused
from stream.deadline import deadline
from stream.settings import Settings

MAX_REDIRECTS = 5
USER_AGENT = "voicewire reference-audio fetcher"
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchedClip:
    url: str
    data: bytes
    clip: ReferenceClip
    sha256: str
    etag: str | None
    last_modified: str | None
    fetched_at: float


def refusal_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address may not be fetched from by default, or None if it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live here)"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "not a globally routable address"
    return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses non-public addresses, and connects to the address it checked."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable | None = None) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ReferenceUrlRefused(f"reference_audio: cannot resolve host {host!r} ({exc.strerror})") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
        if not self._allow_private:
            for address in addresses:
                if (reason := refusal_reason(address)) is not None:
                    raise ReferenceUrlRefused(
                        f"reference_audio: host {host!r} resolves to {address}, {reason}; "
                        "only public addresses are fetched")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                      local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise ReferenceUrlRefused(f"reference_audio: cannot connect to {host}:{port} ({last})")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def check_url(url: str) -> str:
    """The URL if its form is fetchable (scheme, host, no credentials), else `ReferenceUrlRefused`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ReferenceUrlRefused(f"reference_audio: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ReferenceUrlRefused(f"reference_audio: URL scheme {parts.scheme!r} is not allowed; use http or https")
    if not parts.hostname:
        raise ReferenceUrlRefused("reference_audio: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ReferenceUrlRefused("reference_audio: credentials in the URL are not allowed")
    if port == 0:
        raise ReferenceUrlRefused("reference_audio: port 0 is not allowed")
    return url


class ClipFetcher:
    """Fetches, validates and caches reference clips by URL under the rules in the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: OrderedDict[str, FetchedClip] = OrderedDict()

    async def fetch(self, url: str) -> FetchedClip:
        limits = self.settings.limits
        check_url(url)
        cached = self._cache.get(url)
        if cached is not None and time.monotonic() - cached.fetched_at < limits.reference_url_ttl_s:
            self._cache.move_to_end(url)
            return cached
        try:
            async with deadline(limits.reference_fetch_timeout_s):
                fetched = await self._download(url, cached)
        except asyncio.TimeoutError:
            raise ReferenceUrlRefused(
                f"reference_audio: fetching {url} took longer than {limits.reference_fetch_timeout_s:g} s") from None
        self._cache[url] = fetched
        self._cache.move_to_end(url)
        while len(self._cache) > max(1, self.settings.voice_cache_size):
            self._cache.popitem(last=False)
        return fetched

    async def _download(self, url: str, cached: FetchedClip | None) -> FetchedClip:
        limits = self.settings.limits
        timeout = limits.reference_fetch_timeout_s
        extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
        async with httpcore.AsyncConnectionPool(network_backend=_GuardedBackend(self.settings.allow_private_urls),
                                                retries=0) as pool:
            current = url
            for _ in range(MAX_REDIRECTS + 1):
                headers = [("User-Agent", USER_AGENT), ("Accept", "audio/*, */*;q=0.5")]
                if cached is not None and current == url:
                    if cached.etag:
                        headers.append(("If-None-Match", cached.etag))
                    if cached.last_modified:
                        headers.append(("If-Modified-Since", cached.last_modified))
                try:
                    async with pool.stream("GET", current, headers=headers, extensions=extensions) as response:
                        if response.status in _REDIRECTS:
                            location = _header(response, "location")
                            if not location:
                                raise ReferenceUrlRefused(
                                    f"reference_audio: {current} answered HTTP {response.status} without a Location")
                            current = check_url(urljoin(current, location))
                            continue
                        if response.status == 304 and cached is not None and current == url:
                            return FetchedClip(url, cached.data, cached.clip, cached.sha256, cached.etag,
                                               cached.last_modified, time.monotonic())
                        if response.status != 200:
                            raise ReferenceUrlRefused(f"reference_audio: {current} answered HTTP {response.status}")
                        data = await _read_capped(response, current, limits.max_reference_bytes)
                        etag, modified = _header(response, "etag"), _header(response, "last-modified")
                except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                        httpcore.UnsupportedProtocol) as exc:
                    raise ReferenceUrlRefused(
                        f"reference_audio: fetching {current} failed ({type(exc).__name__}: {exc})") from None
                clip = await asyncio.to_thread(decode_clip, data, limits, "reference_audio")
                return FetchedClip(url, data, clip, hashlib.sha256(data).hexdigest(), etag, modified,
                                   time.monotonic())
        raise ReferenceUrlRefused(f"reference_audio: more than {MAX_REDIRECTS} redirects from {url}")


def _header(response: httpcore.Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.decode("latin-1").lower() == name:
            return value.decode("latin-1")
    return None


async def _read_capped(response: httpcore.Response, url: str, cap: int) -> bytes:
    declared = _header(response, "content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ReferenceTooLarge(f"reference_audio: {url} is {declared} bytes, over the {cap}-byte limit")
    body = bytearray()
    async for part in response.aiter_stream():
        body += part
        if len(body) > cap:
            raise ReferenceTooLarge(f"reference_audio: {url} is over the {cap}-byte limit")
    return bytes(body)
