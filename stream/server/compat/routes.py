"""The compat routes, under their vendor's prefix so a client's base URL is all that changes."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from stream.server.compat import elevenlabs_http
from stream.server.compat.elevenlabs_ws import ElevenLabsConnection
from stream.server.compat.resemble_ws import ResembleConnection

ELEVENLABS = "/elevenlabs/v1"
router = APIRouter()
router.include_router(elevenlabs_http.router)


@router.websocket(ELEVENLABS + "/text-to-speech/{voice_id}/stream-input")
async def elevenlabs_stream_input(ws: WebSocket, voice_id: str) -> None:
    await ElevenLabsConnection(ws, ws.app.state.runtime, voice_id, multi=False).run()


@router.websocket(ELEVENLABS + "/text-to-speech/{voice_id}/multi-stream-input")
async def elevenlabs_multi_stream_input(ws: WebSocket, voice_id: str) -> None:
    await ElevenLabsConnection(ws, ws.app.state.runtime, voice_id, multi=True).run()


@router.websocket("/resemble/stream")
async def resemble_stream(ws: WebSocket) -> None:
    await ResembleConnection(ws, ws.app.state.runtime).run()
