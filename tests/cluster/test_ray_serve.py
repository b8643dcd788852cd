"""voicewire on a real local Ray Serve cluster: placement, shared state, the slot finding, faults,
drain on redeploy and autoscaling, all through Serve's HTTP proxy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from stream.storage import LEASE_TTL_S
from tests.cluster.conftest import Cluster
from tests.wire import RawPeer

pytestmark = pytest.mark.slow

LONG_TURN = " ".join(f"This is sentence number {n} of a reply that takes a while to speak." for n in range(12))


async def open_sessions(cluster: Cluster, count: int, headers: dict | None = None) -> list[tuple[RawPeer, dict]]:
    headers = headers or cluster.headers
    return list(await asyncio.gather(*(RawPeer.open(cluster.ws_url, additional_headers=headers)
                                       for _ in range(count))))


async def close_all(peers: list[RawPeer]) -> None:
    await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)


async def speak(peer: RawPeer, context_id: str, text: str = "Ok.") -> dict:
    await peer.send({"type": "text", "context_id": context_id, "text": text})
    await peer.send({"type": "end", "context_id": context_id})
    done, seen = await peer.until("done", context_id, timeout=60)
    assert [m for m in seen if m["type"] == "error"] == []
    return done


async def test_sessions_land_on_both_replicas_which_name_themselves(two_replicas: Cluster):
    names = {r.id for r in two_replicas.running()}
    opened = await open_sessions(two_replicas, 6)
    try:
        assert {ready["replica"] for _, ready in opened} == names
        peer, ready = opened[0]
        await speak(peer, "c1")
    finally:
        await close_all([peer for peer, _ in opened])
    async with httpx.AsyncClient(base_url=two_replicas.http_url, timeout=30, headers=two_replicas.headers) as client:
        answers = [(await client.get("/healthz")).json()["replica"] for _ in range(8)]
        metrics = (await client.get("/metrics")).text
    assert set(answers) <= names
    assert any(f'replica="{name}"' in metrics for name in names)   # /metrics is one replica's own


def test_credits_charged_from_two_processes_through_both_replicas_lose_nothing(two_replicas: Cluster):
    text, affordable = "Hi.", 20
    key = two_replicas.keys("create", "--name", "race", "--credits", str(len(text) * affordable))
    env = os.environ | {"VOICEWIRE_TEST_KEY": key["key"]}
    script = Path(__file__).with_name("credit_race.py")
    racers = [subprocess.Popen([sys.executable, str(script), two_replicas.http_url, "8", "2", text], env=env,
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    statuses: dict[str, int] = {}
    for racer in racers:
        out, _ = racer.communicate(timeout=240)
        for status, count in json.loads(out).items():
            statuses[status] = statuses.get(status, 0) + count
    assert sum(statuses.values()) == 32
    assert statuses == {"200": affordable, "402": 32 - affordable}   # exactly what the credits paid for
    (record,) = [k for k in two_replicas.keys("list") if k["id"] == key["id"]]
    assert record["credits"] == 0


async def test_a_revoked_key_is_refused_on_every_replica_within_one_second(two_replicas: Cluster):
    key = two_replicas.keys("create", "--name", "revoke-me")
    headers = {"x-api-key": key["key"]}
    held = await open_sessions(two_replicas, 4, headers)
    try:
        assert len({ready["replica"] for _, ready in held}) == 2   # the key is cached on both replicas
        two_replicas.keys("revoke", key["id"])
        await asyncio.sleep(1.0)
        for peer, ready in held:   # every charge asks the database, on either replica
            await peer.send({"type": "text", "context_id": "after", "text": "Hello."})
            err = await peer.error()
            assert err["code"] == "insufficient_credits" and "revoked" in err["message"], (ready["replica"], err)
        refused = await asyncio.gather(*(_first_message(two_replicas.ws_url, headers) for _ in range(6)))
        assert [m["code"] for m in refused] == ["unauthorized"] * 6, refused
    finally:
        await close_all([peer for peer, _ in held])


async def _first_message(url: str, headers: dict) -> dict:
    async with websockets.connect(url, additional_headers=headers) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), 20))


async def test_killing_a_replica_mid_turn_closes_its_client_and_the_survivor_serves(two_replicas: Cluster):
    key = two_replicas.keys("create", "--name", "kill", "--credits", "100000")
    headers = {"x-api-key": key["key"]}
    peer, ready = await RawPeer.open(two_replicas.ws_url, additional_headers=headers)
    (victim,) = [r for r in two_replicas.running() if r.id == ready["replica"]]
    await peer.send({"type": "text", "context_id": "t", "text": LONG_TURN})
    await peer.send({"type": "end", "context_id": "t"})
    _, seen = await peer.until("audio", "t")
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(websockets.ConnectionClosed):   # a close, not a hang: recv times out otherwise
        async with asyncio.timeout(30):
            while True:
                message = await peer.recv(timeout=30)
                seen.append(message)
                assert message["type"] != "done", "the turn finished before the kill; make it longer"
    survivor, ready = await RawPeer.open(two_replicas.ws_url, additional_headers=headers)
    assert ready["replica"] != victim.id
    await speak(survivor, "next")
    await survivor.close()
    # Text is charged when it arrives but held as pending until its phrase's audio went out; the
    # killed replica's hold expires with its lease and the survivor's heartbeat returns the unspoken
    # rest (docs/deploy.md, "Credit holds"). At most the phrases the client saw start stay charged.
    announced = sum(len(m["text"]) for m in seen if m["type"] == "phrase")

    def charged() -> int:
        (record,) = [k for k in two_replicas.keys("list") if k["id"] == key["id"]]
        return 100000 - record["credits"]

    sent = len(LONG_TURN) + len("Ok.")
    two_replicas.wait_for(lambda: charged() < sent, timeout=LEASE_TTL_S + 20, what="the unspoken text returned")
    assert len("Ok.") <= charged() <= announced + len("Ok.")
    two_replicas.wait_for(lambda: len(two_replicas.running()) == 2, what="the killed replica replaced")


async def test_a_redeploy_during_a_turn_lets_the_turn_finish_then_says_shutting_down(two_replicas: Cluster):
    opened = await open_sessions(two_replicas, 4)
    talker, ready = opened[0]
    idle = next(peer for peer, r in opened[1:] if r["replica"] == ready["replica"])
    first, rest = "The first part of this turn arrives now.", " The rest arrives while the replica drains."
    await talker.send({"type": "text", "context_id": "t", "text": first})   # a turn open, not yet ended
    redeploy = asyncio.create_task(asyncio.to_thread(two_replicas.deploy, drain_timeout_s=21.0))

    def stopping() -> bool:
        return any(r.id == ready["replica"] and r.state == "STOPPING" for r in two_replicas.replicas())

    await asyncio.to_thread(two_replicas.wait_for, stopping, 120, "the talker's replica stopping")
    idle_final, _ = await idle.until("error", timeout=30)   # an idle session is told at once
    assert idle_final["code"] == "shutting_down"
    await talker.send({"type": "text", "context_id": "t", "text": rest})
    await talker.send({"type": "end", "context_id": "t"})
    done, seen = await talker.until("done", "t", timeout=120)   # the turn finishes on the stopping replica
    assert [m for m in seen if m["type"] in ("error", "cancelled")] == []
    assert done["characters"] == len(first + rest)
    final, _ = await talker.until("error", timeout=30)
    assert final["code"] == "shutting_down"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await talker.recv(timeout=30)
    assert closed.value.rcvd.code == 1001
    await redeploy
    await close_all([peer for peer, _ in opened])
    fresh, ready = await RawPeer.open(two_replicas.ws_url, additional_headers=two_replicas.headers)
    assert ready["replica"] in {r.id for r in two_replicas.running()}
    await speak(fresh, "after")
    await fresh.close()


async def test_an_open_websocket_holds_a_max_ongoing_requests_slot_for_its_life(cluster: Cluster):
    cluster.deploy(replicas=1, max_sessions=1, http_slots=0)   # max_ongoing_requests = 1
    cluster.wait_for(lambda: len(cluster.replicas()) == 1 and len(cluster.running()) == 1, what="one replica")
    async with httpx.AsyncClient(base_url=cluster.http_url, timeout=60, headers=cluster.headers) as client:
        assert (await client.get("/healthz")).status_code == 200   # the slot is free
        peer, _ = await RawPeer.open(cluster.ws_url, additional_headers=cluster.headers)
        await speak(peer, "c")   # a turn, then the session sits idle
        health = asyncio.create_task(client.get("/healthz"))
        done, _ = await asyncio.wait({health}, timeout=3)
        assert not done, "an HTTP request ran while an idle websocket was open: the websocket holds no slot"
        await peer.close()
        assert (await health).status_code == 200   # queued behind the websocket, answered once it closed


async def test_autoscaling_adds_a_replica_when_sessions_open(cluster: Cluster):
    cluster.deploy(replicas=1, max_replicas=2, sessions_per_replica=1, upscale_delay_s=0, look_back_period_s=1,
                   metrics_interval_s=0.5)
    cluster.wait_for(lambda: len(cluster.replicas()) == 1 and len(cluster.running()) == 1, what="one replica")
    opened = await open_sessions(cluster, 3)
    try:
        await asyncio.to_thread(cluster.wait_for, lambda: len(cluster.running()) == 2, 90, "a second replica")
        busy = {r["replica"] for _, r in opened}
        landed = []
        for _ in range(5):   # the proxy learns of the new replica within a moment, then prefers it
            fresh, ready = await RawPeer.open(cluster.ws_url, additional_headers=cluster.headers)
            opened.append((fresh, ready))
            landed.append(ready["replica"])
            if ready["replica"] not in busy:
                break
        assert set(landed) - busy, landed
    finally:
        await close_all([peer for peer, _ in opened])
