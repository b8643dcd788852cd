"""Credits held against a websocket session until its audio went out: a turn's text is settled as
its phrases are spoken and the hold is released at close; a replica killed mid-turn (a real
`voicewire serve` process, SIGKILL) charges its client only for what it had spoken, because another
replica's heartbeat sweeps the dead one's expired hold back to the key."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from stream.accounts.keys import create_key
from tests.serve_child import serve_child
from tests.wire import RawPeer

FIRST = "Hello there."
# Long enough that the process is killed long before all of it is spoken.
REST = " ".join(f"This is sentence number {n} of a long answer that the dying replica never finishes."
                for n in range(1, 25))


async def eventually(check, timeout_s: float, what: str) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, what
        await asyncio.sleep(0.05)


async def test_a_turn_is_settled_as_spoken_and_the_hold_released_at_close(make_server):
    srv = make_server()
    key, secret = create_key(srv.runtime.storage.keys, credits=1000)
    holds = srv.runtime.storage.holds
    peer, ready = await RawPeer.open(srv.ws_url, additional_headers={"x-api-key": secret})
    await peer.send({"type": "text", "context_id": "c", "text": FIRST + " And goodbye."})
    await peer.send({"type": "end", "context_id": "c"})
    await peer.until("done", "c")
    await eventually(lambda: holds.pending(ready["session_id"]) == 0, 10, "the spoken turn was not settled")
    await peer.send({"type": "text", "context_id": "d", "text": "Never mind this."})
    await peer.send({"type": "cancel", "context_id": "d"})
    cancelled, _ = await peer.until("cancelled", "d")
    spoken_d = len(cancelled["text_spoken"])
    await eventually(lambda: holds.pending(ready["session_id"]) == 0, 10, "the cancelled text stayed pending")
    await peer.close()
    await eventually(lambda: holds.pending(ready["session_id"]) is None, 10, "the hold outlived its session")
    assert srv.runtime.storage.keys.get(key.id).credits == 1000 - len(FIRST + " And goodbye.") - spoken_d


@pytest.mark.slow
async def test_a_killed_replica_charges_only_what_it_spoke(make_server, tmp_path):
    """SIGKILL mid-turn: no refund, no close runs. The hold the dead process left expires after its
    lease TTL (1.5 s here, `VOICEWIRE_LEASE_TTL_S`), and the survivor's heartbeat gives exactly its
    pending characters back; the phrase that was spoken before stays charged."""
    survivor = make_server(replica="survivor", lease_ttl_s=1.0)
    storage = survivor.runtime.storage
    key, secret = create_key(storage.keys, credits=10_000)
    with serve_child(tmp_path, "--replica-name", "doomed", env={"VOICEWIRE_LEASE_TTL_S": "1.5"}) as child:
        doomed, ready = await child.open(additional_headers={"x-api-key": secret})
        session = ready["session_id"]
        await doomed.send({"type": "text", "context_id": "a", "text": FIRST})
        await doomed.send({"type": "end", "context_id": "a"})
        await doomed.until("done", "a")
        await eventually(lambda: storage.holds.pending(session) == 0, 10, "the spoken phrase was not settled")

        await doomed.send({"type": "text", "context_id": "b", "text": REST})
        await eventually(lambda: storage.keys.get(key.id).credits == 10_000 - len(FIRST) - len(REST), 10,
                         "the second text was not charged")
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)
        pending = storage.holds.pending(session)
        assert pending is not None and 0 < pending <= len(REST), pending   # killed mid-turn
        charged_before = storage.keys.get(key.id)
        assert charged_before.credits == 10_000 - len(FIRST) - len(REST)

        await eventually(lambda: storage.holds.pending(session) is None, 1.5 + 5,
                         "the survivor did not sweep the dead replica's hold")
        after = storage.keys.get(key.id)
        assert after.credits == charged_before.credits + pending           # exactly the unspoken text back
        assert after.characters_used == len(FIRST) + len(REST) - pending   # the spoken text stays charged
        [day] = storage.usage.daily(key.id)
        assert (day.charged, day.refunded) == (len(FIRST) + len(REST), pending)
        await doomed.close()
