"""A server as one replica among several: its name in `ready`, `/healthz`, metrics and logs; liveness
and readiness; drain (open turns finish, new sessions and requests are refused, then `shutting_down`);
per-key session limits counted through the shared database's leases, released when a replica stops
renewing; and a database outage answered with `storage_unavailable` (HTTP 503, websocket close 1013),
never with free speech."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import threading
import time

import httpx
import pytest
import websockets

from stream.accounts.keys import create_key
from stream.engines.base import SynthesisRequest
from stream.engines.piper.engine import PiperEngine
from stream.server import runtime as runtime_module
from stream.storage import LEASE_TTL_S, Storage, StorageUnavailable
from tests.serve_child import serve_child
from tests.wire import RawPeer

SPEECH = "/v1/audio/speech"
SPEECH_BODY = {"model": "tts-1", "voice": "alloy", "response_format": "wav"}


class GatedEngine(PiperEngine):
    """The real piper voice, except that a phrase saying 'gate' waits until the test opens the gate,
    so a turn is reliably still in progress while the test looks at a draining server."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event):
        if "gate" in request.text:
            self.gate.wait(60)
        yield from super().synthesize(request, cancel)


@pytest.fixture(scope="module")
def gated_engine() -> GatedEngine:
    engine = GatedEngine()
    engine.load()
    return engine


def server_loop(srv) -> asyncio.AbstractEventLoop:
    return srv.server.servers[0].get_loop()


def start_drain(srv, deadline_s: float) -> asyncio.Future:
    """`Runtime.drain` on the server's own loop, as SIGTERM or the Ray deployment starts it."""
    return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(srv.runtime.drain(deadline_s), server_loop(srv)))


async def refusal(url: str, **kwargs) -> tuple[dict, int]:
    """The error a refused session gets at the door, and its close code."""
    async with websockets.connect(url, **kwargs) as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    return error, closed.value.rcvd.code


# -- identity and health -----------------------------------------------------------------------------

async def test_ready_healthz_livez_readyz_and_metrics_name_the_replica(make_server):
    srv = make_server(replica="east-7")
    peer, ready = await RawPeer.open(srv.ws_url)
    assert ready["replica"] == "east-7"
    async with httpx.AsyncClient(base_url=srv.http_url) as http:
        health = (await http.get("/healthz")).json()
        assert (health["replica"], health["draining"], health["sessions"]) == ("east-7", False, 1)
        assert (await http.get("/livez")).json() == {"status": "ok", "replica": "east-7"}
        ready_z = await http.get("/readyz")
        assert ready_z.status_code == 200
        assert ready_z.json()["ready"] is True and ready_z.json()["failed"] == []
        assert 'voicewire_replica_info{replica="east-7"} 1.0' in (await http.get("/metrics")).text
    assert srv.runtime.active_sessions() == 1
    await peer.close()


def test_the_default_replica_name_is_host_and_pid(make_server):
    import socket

    assert make_server().runtime.replica == f"{socket.gethostname()}-{os.getpid()}"


def test_every_server_log_line_names_the_replica():
    import logging

    from stream.server.log_redaction import logging_config

    config = logging_config("info", (), replica="east-7")
    for handler in config["handlers"].values():
        assert "replica" in handler["filters"]
    record = logging.LogRecord("voicewire", logging.INFO, __file__, 1, "engine %s", ("piper",), None)
    replica_filter = config["filters"]["replica"]["()"](replica="east-7")
    assert replica_filter.filter(record)
    line = logging.Formatter(config["formatters"]["server"]["format"]).format(record)
    assert "[east-7] voicewire: engine piper" in line


# -- drain --------------------------------------------------------------------------------------------

async def test_drain_lets_the_open_turn_finish_refuses_newcomers_then_closes(make_server, gated_engine):
    srv = make_server(engine=gated_engine)
    gated_engine.gate.clear()
    peer, _ = await RawPeer.open(srv.ws_url)
    idle, _ = await RawPeer.open(srv.ws_url)
    text = "Open the gate. Then say a second sentence, so the turn has more than one phrase."
    await peer.send({"type": "text", "context_id": "turn", "text": text})
    await peer.send({"type": "end", "context_id": "turn"})
    while not any(s.busy for s in srv.runtime.sessions.live):
        await asyncio.sleep(0.02)
    draining = start_drain(srv, 60)
    try:
        # A session with no turn closes at once; the busy one stays open while its turn runs.
        msg, _ = await idle.until("error")
        assert msg["code"] == "shutting_down"
        error, code = await refusal(srv.ws_url)
        assert (error["code"], code) == ("shutting_down", 1001)
        async with httpx.AsyncClient(base_url=srv.http_url) as http:
            refused = await http.post(SPEECH, json={**SPEECH_BODY, "input": "Hello there."})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "shutting_down"
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["failed"] == ["draining"]
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/healthz")).json()["draining"] is True
        assert not draining.done()
    finally:
        gated_engine.gate.set()
    done, seen = await peer.until("done", "turn", timeout=60)
    audio = [m for m in seen if m["type"] == "audio"]
    assert audio and sum(m["duration_ms"] for m in audio) == pytest.approx(done["audio_ms"], abs=len(audio))
    assert [m for m in seen if m["type"] in ("cancelled", "error")] == []
    msg, _ = await peer.until("error")
    assert (msg["code"], msg["fatal"]) == ("shutting_down", True)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv()
    assert closed.value.rcvd.code == 1001
    await asyncio.wait_for(draining, 10)
    assert srv.runtime.active_sessions() == 0


async def test_a_turn_still_open_at_the_deadline_is_cancelled_with_shutting_down(make_server):
    srv = make_server()
    peer, _ = await RawPeer.open(srv.ws_url)
    await peer.send({"type": "text", "context_id": "typing", "text": "Still typing this one"})
    while not any(s.busy for s in srv.runtime.sessions.live):
        await asyncio.sleep(0.02)
    await asyncio.wait_for(start_drain(srv, 0.3), 20)
    cancelled, _ = await peer.until("cancelled", "typing")
    assert cancelled["text_spoken"] + cancelled["text_remaining"] == "Still typing this one"
    msg, _ = await peer.until("error")
    assert msg["code"] == "shutting_down"


# -- per-key session limits across replicas --------------------------------------------------------------

async def test_the_per_key_limit_counts_sessions_on_every_replica_and_a_silent_replica_lets_go(make_server):
    secret = "replica-test-static-key"
    # A short TTL from the start: the heartbeat runs from the app's start at TTL / 3.
    a = make_server(api_keys=(secret,), max_sessions_per_key=2, replica="a", lease_ttl_s=1.0)
    b = make_server(api_keys=(secret,), max_sessions_per_key=2, replica="b", lease_ttl_s=1.0)  # one SQLite file
    key_id = a.runtime.auth.authenticate(secret).key_id
    headers = {"x-api-key": secret}
    on_a, ready_a = await RawPeer.open(a.ws_url, additional_headers=headers)
    on_b, ready_b = await RawPeer.open(b.ws_url, additional_headers=headers)
    assert (ready_a["replica"], ready_b["replica"]) == ("a", "b")
    error, code = await refusal(a.ws_url, additional_headers=headers)
    assert (error["code"], code) == ("rate_limited", 1013)
    assert "x-api-key" in error["message"] and "2 sessions per key" in error["message"]

    await on_b.close()   # closing on one replica frees the count for the other
    while a.runtime.storage.leases.count(key_id) != 1:
        await asyncio.sleep(0.02)
    again_a, _ = await RawPeer.open(a.ws_url, additional_headers=headers)

    # Leases outlive their TTL while the replica renews them...
    await asyncio.sleep(3 * a.runtime.sessions.ttl_s)
    assert a.runtime.storage.leases.count(key_id) == 2
    error, _ = await refusal(b.ws_url, additional_headers=headers)
    assert error["code"] == "rate_limited"
    # ...and a replica that stops renewing (as a killed one does) stops counting within the TTL.
    server_loop(a).call_soon_threadsafe(a.runtime.sessions.stop_heartbeat)
    started = time.monotonic()
    while a.runtime.storage.leases.count(key_id) != 0:
        assert time.monotonic() - started < 5 * a.runtime.sessions.ttl_s, "a silent replica's leases did not expire"
        await asyncio.sleep(0.05)
    on_b2, _ = await RawPeer.open(b.ws_url, additional_headers=headers)
    for peer in (on_a, again_a, on_b2):
        await peer.close()


# -- database outage -------------------------------------------------------------------------------------

class Outage:
    """Storage whose repositories raise `StorageUnavailable` while `down` is set, as a backend does
    when its database cannot be reached."""

    def __init__(self) -> None:
        self.down = threading.Event()

    def wrap(self, storage: Storage) -> Storage:
        return dataclasses.replace(storage, keys=self._proxy(storage.keys), voices=self._proxy(storage.voices),
                                   usage=self._proxy(storage.usage), leases=self._proxy(storage.leases))

    def _proxy(self, repository):
        outage = self

        class Proxy:
            def __getattr__(self, name):
                method = getattr(repository, name)

                def call(*args, **kwargs):
                    if outage.down.is_set():
                        raise StorageUnavailable("database sqlite:///test is unavailable: simulated outage")
                    return method(*args, **kwargs)

                return call

        return Proxy()


@pytest.fixture
def outage(monkeypatch) -> Outage:
    outage = Outage()
    real = runtime_module.open_storage
    monkeypatch.setattr(runtime_module, "open_storage", lambda url, path: outage.wrap(real(url, path)))
    return outage


async def test_a_database_outage_is_a_retryable_error_never_free_speech_and_the_server_recovers(
        make_server, outage):
    srv = make_server()
    key, secret = create_key(srv.runtime.storage.keys, credits=1000)
    srv.runtime.database.cache_s = 0   # readiness asks the database every time in this test
    headers = {"x-api-key": secret}
    speech = {**SPEECH_BODY, "input": "Hello there."}
    peer, _ = await RawPeer.open(srv.ws_url, additional_headers=headers)
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=30) as http:
        outage.down.set()
        refused = await http.post(SPEECH, json=speech, headers=headers)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        body = refused.json()["error"]
        assert body["code"] == "storage_unavailable" and "database" in body["message"]
        assert "sqlite" not in body["message"]   # what the database is stays in the server's log
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["failed"] == ["database"]
        assert (await http.get("/livez")).status_code == 200

        # An open session: the turn's charge fails, so nothing is spoken; the close says retry later.
        await peer.send({"type": "text", "context_id": "c", "text": "Say this for free?"})
        await peer.send({"type": "end", "context_id": "c"})
        msg, seen = await peer.until("error")
        assert (msg["code"], msg["fatal"]) == ("storage_unavailable", True)
        assert [m for m in seen if m["type"] == "audio"] == []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await peer.recv()
        assert closed.value.rcvd.code == 1013
        # A new keyed session cannot be authorized or leased either.
        error, code = await refusal(srv.ws_url, additional_headers=headers)
        assert (error["code"], code) == ("storage_unavailable", 1013)

        outage.down.clear()
        ok = await http.post(SPEECH, json=speech, headers=headers)
        assert ok.status_code == 200 and ok.content[:4] == b"RIFF"
        assert (await http.get("/readyz")).status_code == 200
    assert srv.runtime.storage.keys.get(key.id).credits == 1000 - len(speech["input"])
    peer, _ = await RawPeer.open(srv.ws_url, additional_headers=headers)
    await peer.send({"type": "text", "context_id": "c", "text": "Back again."})
    await peer.send({"type": "end", "context_id": "c"})
    done, _ = await peer.until("done", "c")
    assert done["usage"]["remaining_credits"] == 1000 - len("Hello there.") - len("Back again.")
    await peer.close()


@pytest.mark.slow
async def test_a_killed_replica_stops_counting_against_the_key_within_the_lease_ttl(make_server, tmp_path):
    """The real failure, not a simulation: a `voicewire serve` process holding a key's only session is
    killed (SIGKILL: no drain, no release), and the surviving replica admits the key again once the
    dead one's lease expires."""
    secret = "replica-test-static-key"
    survivor = make_server(api_keys=(secret,), max_sessions_per_key=1, replica="survivor")
    env = {"VOICEWIRE_API_KEYS": secret, "VOICEWIRE_MAX_SESSIONS_PER_KEY": "1"}
    headers = {"x-api-key": secret}
    with serve_child(tmp_path, "--replica-name", "doomed", env=env) as child:
        doomed, ready = await child.open(additional_headers=headers)
        assert ready["replica"] == "doomed"
        error, _ = await refusal(survivor.ws_url, additional_headers=headers)
        assert error["code"] == "rate_limited"
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)
        killed = time.monotonic()
        while True:
            peer, first = await RawPeer.open(survivor.ws_url, additional_headers=headers)
            await peer.close()
            if first["type"] == "ready":
                break
            assert first["code"] == "rate_limited"   # refused while the dead replica's lease lives
            assert time.monotonic() - killed < LEASE_TTL_S + 5, "the killed replica's lease outlived its TTL"
            await asyncio.sleep(0.25)
        assert first["replica"] == "survivor"
        await doomed.close()


async def test_replicas_on_postgresql_share_the_key_limit_and_ride_out_an_outage(make_server, postgres_server,
                                                                                 postgres_url):
    """Two replicas on one real PostgreSQL database: the per-key limit spans both; with the database
    stopped, requests get `storage_unavailable` and readiness fails while liveness holds; once it is
    back, both serve again without a restart."""
    secret = "replica-test-static-key"
    a = make_server(database_url=postgres_url, api_keys=(secret,), max_sessions_per_key=1, replica="a")
    b = make_server(database_url=postgres_url, api_keys=(secret,), max_sessions_per_key=1, replica="b")
    headers = {"x-api-key": secret}
    on_a, _ = await RawPeer.open(a.ws_url, additional_headers=headers)
    error, code = await refusal(b.ws_url, additional_headers=headers)
    assert (error["code"], code) == ("rate_limited", 1013)
    await on_a.close()
    while True:   # a's close gives the lease back in the database
        peer, first = await RawPeer.open(b.ws_url, additional_headers=headers)
        await peer.close()
        if first["type"] == "ready":
            break
        await asyncio.sleep(0.05)

    _, metered = create_key(a.runtime.storage.keys, credits=1000)
    speech = {**SPEECH_BODY, "input": "Hello there."}
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.post(b.http_url + SPEECH, json=speech, headers={"x-api-key": metered})).status_code == 200
        postgres_server.stop()
        try:
            refused = await http.post(a.http_url + SPEECH, json=speech, headers={"x-api-key": metered})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "storage_unavailable"
            error, code = await refusal(b.ws_url, additional_headers=headers)   # its lease cannot be taken
            assert (error["code"], code) == ("storage_unavailable", 1013)
            b.runtime.database.cache_s = 0
            ready = await http.get(b.http_url + "/readyz")
            assert ready.status_code == 503 and ready.json()["failed"] == ["database"]
            assert (await http.get(b.http_url + "/livez")).status_code == 200
        finally:
            postgres_server.start()
        started = time.monotonic()
        while (await http.post(a.http_url + SPEECH, json=speech, headers={"x-api-key": metered})).status_code != 200:
            assert time.monotonic() - started < 30, "the server did not recover when the database returned"
            await asyncio.sleep(0.5)
        while (await http.get(b.http_url + "/readyz")).status_code != 200:   # b's pool reconnects on its own
            assert time.monotonic() - started < 30, "readiness did not recover when the database returned"
            await asyncio.sleep(0.5)
    assert a.runtime.storage.keys.get(a.runtime.auth.authenticate(metered).key_id).credits == 1000 - 2 * len("Hello there.")


@pytest.mark.slow
async def test_sigterm_drains_voicewire_serve_the_open_turn_finishes_before_shutting_down(tmp_path):
    """The wiring, end to end: SIGTERM to `voicewire serve` starts the drain, so a turn in progress
    ends with `done` and all its audio, not `cancelled`, and only then comes `shutting_down`."""
    with serve_child(tmp_path, "--drain-timeout", "120", "--replica-name", "draining-one") as child:
        peer, ready = await child.open()
        first, rest = "A turn that is speaking when the server is told to stop. ", "Its last words come after."
        await peer.send({"type": "text", "context_id": "turn", "text": first})
        await peer.until("audio", "turn")
        child.process.send_signal(signal.SIGTERM)
        while True:   # the listener closes when the drain starts; the open turn is not cancelled
            try:
                async with websockets.connect(child.ws_url, open_timeout=5):
                    pass
            except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError):
                break
            await asyncio.sleep(0.1)
        await peer.send({"type": "text", "context_id": "turn", "text": rest})
        await peer.send({"type": "end", "context_id": "turn"})
        done, seen = await peer.until("done", "turn", timeout=120)
        assert [m for m in seen if m["type"] in ("cancelled", "error")] == []
        assert done["characters"] == len(first + rest)
        msg, _ = await peer.until("error")
        assert (msg["code"], msg["fatal"]) == ("shutting_down", True)
        assert child.process.wait(60) in (0, -signal.SIGTERM)
    assert "[draining-one]" in child.log
