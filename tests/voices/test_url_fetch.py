"""Fetching reference clips by URL: the safety rules, the limits, validation and the cache.

A real HTTP server on loopback serves the clips; it is reachable only in tests that allow private
URLs, exactly as an operator would configure it. Under the default configuration every loopback,
private and link-local address is refused before any connection is made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from stream.core.errors import BadAudio, ReferenceTooLarge, ReferenceUrlRefused
from stream.settings import Limits, Settings
from stream.voices.url_fetch import ClipFetcher
from tests.clip_server import CLIP, ClipServer


@pytest.fixture
def clip_server() -> Iterator[ClipServer]:
    srv = ClipServer()
    yield srv
    srv.close()


def fetcher(allow_private: bool = True, **limits) -> ClipFetcher:
    return ClipFetcher(Settings(allow_private_urls=allow_private, limits=Limits(**limits)))


async def test_fetches_and_validates_a_clip_from_a_real_server(clip_server):
    got = await fetcher().fetch(clip_server.url("/clip.wav"))
    assert got.data == CLIP and got.etag == '"v1"'
    assert got.clip.sample_rate == 24_000 and abs(got.clip.seconds - 2.0) < 0.01
    assert np.abs(got.clip.audio).max() > 0.1


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:{port}/clip.wav", "a loopback address"),
    ("http://localhost:{port}/clip.wav", "a loopback address"),
    ("http://[::1]:{port}/clip.wav", "a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/clip.wav", "a loopback address"),
    ("http://10.1.2.3/clip.wav", "a private address"),
    ("http://192.168.0.10/clip.wav", "a private address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://0.0.0.0:{port}/clip.wav", "an unspecified address"),
    ("http://100.100.100.200/latest/meta-data/", "not a globally routable address"),
])
async def test_default_configuration_refuses_non_public_addresses(clip_server, url, reason):
    with pytest.raises(ReferenceUrlRefused) as info:
        await fetcher(allow_private=False).fetch(url.format(port=clip_server.port))
    assert info.value.http_status == 422
    assert reason in info.value.message and "only public addresses" in info.value.message
    assert sum(clip_server.hits.values()) == 0  # refused before connecting


@pytest.mark.parametrize(("url", "fragment"), [
    ("ftp://example.com/clip.wav", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("http://user:secret@example.com/clip.wav", "credentials in the URL"),
    ("http:///clip.wav", "has no host"),
    ("http://example.com:99999/clip.wav", "not a valid URL"),
])
async def test_malformed_or_non_http_urls_are_refused(url, fragment):
    with pytest.raises(ReferenceUrlRefused) as info:
        await fetcher(allow_private=False).fetch(url)
    assert fragment in info.value.message


async def test_redirects_are_followed_and_every_hop_is_checked(clip_server):
    got = await fetcher().fetch(clip_server.url("/hop/3"))
    assert got.data == CLIP
    with pytest.raises(ReferenceUrlRefused, match="more than 5 redirects"):
        await fetcher().fetch(clip_server.url("/hop/9"))
    with pytest.raises(ReferenceUrlRefused, match="scheme 'ftp' is not allowed"):
        await fetcher().fetch(clip_server.url("/to-ftp"))


async def test_size_cap_applies_to_declared_and_streamed_bodies(clip_server):
    for path in ("/big", "/big-chunked"):
        with pytest.raises(ReferenceTooLarge) as info:
            await fetcher(max_reference_bytes=1000).fetch(clip_server.url(path))
        assert info.value.http_status == 413 and "1000-byte limit" in info.value.message


async def test_timeout_bounds_the_whole_fetch(clip_server):
    started = time.monotonic()
    with pytest.raises(ReferenceUrlRefused, match=r"took longer than 0.5 s"):
        await fetcher(reference_fetch_timeout_s=0.5).fetch(clip_server.url("/slow"))
    assert time.monotonic() - started < 1.5


async def test_upstream_errors_and_non_audio_are_refused(clip_server):
    with pytest.raises(ReferenceUrlRefused, match="answered HTTP 404"):
        await fetcher().fetch(clip_server.url("/missing"))
    with pytest.raises(BadAudio, match="reference_audio: unreadable audio") as info:
        await fetcher().fetch(clip_server.url("/text"))
    assert info.value.http_status == 415
    with pytest.raises(ReferenceUrlRefused, match="cannot connect to 127.0.0.1"):
        closed = ClipServer()
        url = closed.url("/clip.wav")
        closed.close()
        await fetcher().fetch(url)


async def test_cache_skips_refetch_then_revalidates_with_the_etag(clip_server):
    url = clip_server.url("/clip.wav")
    cached = fetcher()
    first = await cached.fetch(url)
    assert (await cached.fetch(url)) is first
    assert clip_server.hits["/clip.wav"] == 1
    revalidating = fetcher(reference_url_ttl_s=0)
    await revalidating.fetch(url)
    again = await revalidating.fetch(url)
    assert again.data == CLIP and again.sha256 == first.sha256
    assert clip_server.hits["/clip.wav"] == 3 and clip_server.not_modified == 1
