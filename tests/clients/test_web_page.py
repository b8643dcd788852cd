"""The browser page at `/` in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.agent_adapters.test_adapters_pipecat import LONG, cancelled_contexts

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def browser(tmp_path):
    """Opens the page at a URL and waits for a `vw.state`; page errors and console errors fail the test."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (./scripts/test installs it when run as root)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 900, "height": 860})
        errors: list[str] = []

        async def open_page(url: str, state: str = "idle"):
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            await page.goto(url)
            await page.wait_for_function(f"window.vw && window.vw.state === '{state}'", timeout=15000)
            return page

        open_page.errors = errors
        yield open_page
        assert not errors, errors
        await context.close()


@pytest.fixture
async def page(server, browser):
    return await browser(f"{server.http_url}/")


def test_page_and_its_icon_are_served(server):
    res = httpx.get(f"{server.http_url}/")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    assert "/v1/stream" in res.text
    icon = httpx.get(f"{server.http_url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")


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


# -- a server with API keys ------------------------------------------------------------------------

KEY = "page-test-key"


@pytest.fixture
def keyed(make_server):
    return make_server(api_keys=(KEY,))


async def refused_then_fixed_with_the_key_field(page):
    """The server's refusal stays on screen with how to fix it; the key field then connects."""
    code, message = await page.evaluate("[vw.error.code, vw.error.message]")
    assert code == "unauthorized" and message
    assert await page.text_content("#status") == f"error unauthorized: {message}"
    assert "enter it below and press Connect" in await page.text_content("#help")
    assert await page.is_visible("#api-key") and not await page.is_enabled("#speak")
    await page.fill("#api-key", KEY)
    await page.click("#connect")
    await page.wait_for_function("vw.state === 'idle'", timeout=15000)
    assert (await page.text_content("#status")).startswith("connected: piper")
    assert await page.is_enabled("#speak")


async def test_without_a_key_the_page_shows_the_refusal_and_offers_a_key_field(keyed, browser):
    page = await browser(f"{keyed.http_url}/", state="disconnected")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-page-unauthorized.png"), full_page=True)
    await refused_then_fixed_with_the_key_field(page)


async def test_a_wrong_key_shows_the_refusal_and_a_right_one_connects(keyed, browser):
    page = await browser(f"{keyed.http_url}/?api_key=not-the-key", state="disconnected")
    assert await page.input_value("#api-key") == "not-the-key"
    await refused_then_fixed_with_the_key_field(page)


async def test_a_good_key_speaks_and_lists_voices_with_a_key_form_the_voices_api_accepts(keyed, browser):
    page = await browser(f"{keyed.http_url}/?api_key={KEY}")
    await page.wait_for_function("vw.voices !== null || vw.voicesError !== null", timeout=15000)
    assert await page.evaluate("vw.voicesError") is None
    await page.select_option("#rate", "0")
    await page.fill("#text", "Hello with a key.")
    await page.click("#speak")
    await page.wait_for_function("vw.final !== null && vw.state === 'idle'", timeout=30000)
    assert await page.evaluate("vw.final.type") == "done" and await page.evaluate("vw.error") is None


async def test_a_failing_voice_list_is_shown_next_to_the_voice_field(page, browser):
    body = {"type": "error", "code": "internal", "message": "voice store unavailable", "fatal": False}
    await page.route("**/v1/voices", lambda route: route.fulfill(status=500, json=body))
    await page.evaluate("loadVoices()")
    assert await page.evaluate("vw.voicesError") == "500 internal: voice store unavailable"
    assert await page.text_content("#voices-status") == "voice list unavailable: 500 internal: voice store unavailable"
    assert [e for e in browser.errors if "status of 500" in e] == browser.errors != []  # Chromium logs the 500
    browser.errors.clear()


async def test_credits_running_out_mid_turn_show_the_message_and_the_paid_text_is_spoken(make_server, browser):
    srv = make_server()
    made = subprocess.run([sys.executable, "-m", "stream.cli", "keys", "create", "--credits", "40",
                           "--data-dir", srv.runtime.settings.data_dir], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    page = await browser(f"{srv.http_url}/?api_key={made.stdout.strip()}")
    await page.select_option("#rate", "60")
    await page.click("#speak")  # the default text is far over 40 characters
    await page.wait_for_function("vw.state === 'idle' && vw.error !== null", timeout=30000)
    error = await page.evaluate("vw.error")
    assert error["code"] == "insufficient_credits" and "credits" in error["message"]
    status = await page.text_content("#status")
    assert status == f"error insufficient_credits: {error['message']}"
    assert "voicewire keys add-credits" in await page.text_content("#help")
    final = await page.evaluate("vw.final")
    assert final["type"] == "done" and 0 < final["characters"] <= 40 and final["audio_ms"] > 0
