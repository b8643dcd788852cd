"""A raw websocket peer for protocol tests: sends arbitrary frames, reads typed messages."""

from __future__ import annotations

import asyncio
import json

import websockets


class RawPeer:
    def __init__(self, ws) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, **kwargs) -> tuple[RawPeer, dict]:
        ws = await websockets.connect(url, max_size=2**25, **kwargs)
        peer = cls(ws)
        return peer, await peer.recv()

    async def send(self, obj) -> None:
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    async def recv(self, timeout: float = 20.0) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def until(self, kind: str, context_id: str | None = None, timeout: float = 30.0) -> tuple[dict, list[dict]]:
        """Read until a message of `kind` (for `context_id` if given); return it and everything before it."""
        seen: list[dict] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg["type"] == kind and (context_id is None or msg.get("context_id") == context_id):
                    return msg, seen
                seen.append(msg)

    async def error(self, timeout: float = 10.0) -> dict:
        msg, _ = await self.until("error", timeout=timeout)
        return msg

    async def close(self) -> None:
        await self.ws.close()
