"""A scripted voicewire server for client-side tests: a real websocket server on a loopback port that
opens with a `ready` and answers each client message with the frames a script returns, so a test can
send what a newer, older or broken server would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from stream.core.server_messages import OutputFormatInfo, ReadyMessage, dump_message

Reply = Callable[[dict], list[str]]


def ready(sample_rate: int = 24000) -> ReadyMessage:
    return ReadyMessage(session_id="s-1", engine="piper", model="en_US-joe-medium",
                        output_format=OutputFormatInfo(encoding="pcm_s16le", sample_rate=sample_rate),
                        capabilities={"voice_cloning": False}, limits={"max_contexts_per_session": 8})


def with_extra_field(frame: str) -> str:
    """The frame as a newer server might send it: one field this client has never heard of."""
    return json.dumps({**json.loads(frame), "emotion_vector": [0.1, 0.2]})


@dataclass
class ScriptedPeer:
    url: str
    closed: asyncio.Future[int | None]  # the close code the client sent
    received: list[dict]


@asynccontextmanager
async def scripted_server(reply: Reply, first: str | None = None) -> AsyncIterator[ScriptedPeer]:
    """Serve one script; `first` replaces the opening `ready` (a refusal, a wrong first message)."""
    peer = ScriptedPeer("", asyncio.get_running_loop().create_future(), [])

    async def handler(ws) -> None:
        await ws.send(first or dump_message(ready()))
        try:
            async for raw in ws:
                peer.received.append(json.loads(raw))
                for frame in reply(peer.received[-1]):
                    await ws.send(frame)
        except ConnectionClosed:
            pass
        if not peer.closed.done():
            peer.closed.set_result(ws.close_code)

    async with serve(handler, "127.0.0.1", 0) as server:
        peer.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield peer


def on_first_message(frames: list[str]) -> Reply:
    """A script that answers the client's first message with `frames` and the rest with nothing."""
    pending = [frames]
    return lambda _message: pending.pop() if pending else []
