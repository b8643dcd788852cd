"""What a session holds is released when its turns end: no synthesis job, context or connection
outlives its use while the socket stays open (a soak runs thousands of turns per connection)."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

from stream.inference.chunk_stream import ChunkStream
from stream.server.websocket import Connection
from tests.wire import RawPeer

LONG = " ".join(f"This is sentence number {i}, and it goes on for a while." for i in range(30))


def live(kind: type, pool=None) -> list:
    gc.collect()
    # type(), not isinstance(): isinstance() on a dead weakref.proxy (other libraries leave some) raises.
    return [o for o in gc.get_objects()
            if issubclass(type(o), kind) and (pool is None or getattr(o._handle, "_pool", None) is pool)]


def gone(refs: list[weakref.ref]) -> bool:
    gc.collect()
    return all(ref() is None for ref in refs)


async def eventually(check, timeout: float = 10.0, poll_s: float = 0.05) -> bool:
    until = time.monotonic() + timeout
    while not check():
        if time.monotonic() > until:
            return False
        await asyncio.sleep(poll_s)
    return True


async def test_cancelled_contexts_leave_no_synthesis_jobs_or_contexts_behind(server):
    pool = server.runtime.executor
    peer, _ = await RawPeer.open(server.ws_url)
    contexts: list[weakref.ref] = []
    for turn in range(4):
        cid = f"c{turn}"
        await peer.send({"type": "text", "context_id": cid, "text": LONG})
        await peer.until("audio", cid)
        # Cancel once the next phrase is being prefetched (a job beside the one speaking). Piper says a
        # short phrase in one chunk, so poll the session's own record of its jobs, not the heap.
        (conn,) = server.runtime.sessions.live
        ctx = conn.session.contexts[cid]
        assert await eventually(lambda ctx=ctx: len(ctx.jobs) >= 2, poll_s=0.002)
        contexts.append(weakref.ref(ctx))
        del ctx  # the check below wants the context gone
        await peer.send({"type": "cancel", "context_id": cid})
        await peer.until("cancelled", cid)
    # An idle worker thread may still hold the last job it ran (at most one each), nothing else may.
    assert await eventually(lambda: len(live(ChunkStream, pool)) <= pool.workers), \
        f"{len(live(ChunkStream, pool))} synthesis jobs held after 4 cancelled contexts ({pool.workers} workers)"
    assert await eventually(lambda: gone(contexts))
    # The session still speaks every phrase of a new context.
    await peer.send({"type": "text", "context_id": "d", "text": "Still here. And still speaking, all of it."})
    await peer.send({"type": "end", "context_id": "d"})
    done, seen = await peer.until("done", "d")
    assert done["phrases"] >= 2
    assert len([m for m in seen if m["type"] == "audio"]) >= done["phrases"]
    await peer.close()


async def test_a_closed_connection_is_released(server):
    for _ in range(3):
        peer, _ = await RawPeer.open(server.ws_url)
        await peer.send({"type": "text", "context_id": "x", "text": LONG})
        await peer.until("audio", "x")
        peer.ws.transport.abort()  # dropped mid-turn
    assert await eventually(lambda: not server.runtime.sessions.live)
    # Other tests' servers may still hold connections of their own: only this server's count.
    assert await eventually(lambda: not [c for c in live(Connection) if c.rt is server.runtime])
    assert await eventually(lambda: len(live(ChunkStream, server.runtime.executor)) <= server.runtime.executor.workers)
