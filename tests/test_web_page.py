"""The browser page at `/` in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.test_adapters_pipecat import LONG, cancelled_contexts

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
async def page(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (./scripts/test installs it when run as root)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 900, "height": 860})
        page = context.pages[0] if context.pages else await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{server.http_url}/")
        await page.wait_for_function("window.vw && window.vw.state === 'idle'", timeout=15000)
        yield page
        assert not errors, errors
        await context.close()


def test_page_is_served_at_root(server):
    res = httpx.get(f"{server.http_url}/")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    assert "/v1/stream" in res.text


async def test_speak_schedules_gapless_audio_and_shows_ttfa_and_phrases(page):
    assert "connected: piper" in await page.text_content("#status")
    await page.select_option("#rate", "60")
    await page.fill("#exaggeration", "0.9")
    await page.click("#speak")
    await page.wait_for_function("window.vw.final !== null", timeout=30000)
    vw = await page.evaluate("({chunks: vw.chunksScheduled, ttfa: vw.ttfaMs, gaps: vw.gaps, audio: vw.audioMs,"
                             " final: vw.final, phrases: vw.phrasesShown, rate: vw.ready.output_format})")
    assert vw["final"]["type"] == "done"
    assert vw["rate"]["encoding"] == "pcm_f32le"
    assert vw["chunks"] >= 3 and vw["audio"] == pytest.approx(vw["final"]["audio_ms"], abs=1)
    assert vw["gaps"] == 0
    assert 0 < vw["ttfa"] < 5000 and await page.text_content("#ttfa") == str(vw["ttfa"])
    assert vw["phrases"][0].startswith("Sure, I can help")
    assert (await page.text_content("#phrase")).strip()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
    await page.wait_for_function("window.vw.state === 'idle'", timeout=30000)
    assert (await page.text_content("#status")).startswith("done:")


async def test_stop_cancels_and_no_audio_follows(page, server):
    before = cancelled_contexts(server)
    await page.fill("#text", LONG)
    await page.select_option("#rate", "10")
    await page.click("#speak")
    await page.wait_for_function("window.vw.chunksScheduled >= 1", timeout=30000)
    await page.click("#stop")
    await page.wait_for_function("window.vw.final !== null", timeout=15000)
    scheduled = await page.evaluate("vw.chunksScheduled")
    await page.wait_for_timeout(1000)
    assert await page.evaluate("vw.final.type") == "cancelled"
    assert await page.evaluate("vw.chunksScheduled") == scheduled  # nothing stale after the stop
    assert (await page.text_content("#status")).startswith("stopped:")
    assert await page.is_enabled("#speak") and not await page.is_enabled("#stop")
    assert cancelled_contexts(server) == before + 1
