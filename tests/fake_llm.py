"""A loopback LLM server speaking the OpenAI chat-completions and Anthropic Messages streaming wire
formats (SSE), so the real `openai` and `anthropic` SDKs can be tested against a scripted reply."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from clients.tokens import llm_deltas


@dataclass
class LLMRequest:
    path: str
    body: dict
    tokens_sent: int = 0
    finished: bool = False  # every token was written; False after a client disconnect


@dataclass
class FakeLLM:
    """Streams `reply` as word-piece deltas at `tokens_per_second` and records each request."""

    reply: str = "Hello there! This is a scripted reply, streamed token by token."
    tokens_per_second: float = 50.0
    requests: list[LLMRequest] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _paced(self, record: LLMRequest) -> AsyncIterator[str]:
        for delta in llm_deltas(self.reply):
            await asyncio.sleep(1.0 / self.tokens_per_second)
            record.tokens_sent += 1
            yield delta
        record.finished = True

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> StreamingResponse:
            record = LLMRequest("/v1/chat/completions", await request.json())
            self.requests.append(record)
            model = record.body.get("model", "fake")

            def chunk(delta: dict, finish: str | None = None) -> str:
                body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return f"data: {json.dumps(body)}\n\n"

            async def sse() -> AsyncIterator[str]:
                yield chunk({"role": "assistant", "content": ""})
                async for delta in self._paced(record):
                    yield chunk({"content": delta})
                yield chunk({}, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(sse(), media_type="text/event-stream")

        @app.post("/v1/messages")
        async def messages(request: Request) -> StreamingResponse:
            record = LLMRequest("/v1/messages", await request.json())
            self.requests.append(record)

            def event(kind: str, body: dict) -> str:
                return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n"

            async def sse() -> AsyncIterator[str]:
                yield event("message_start", {"message": {
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": record.body["model"],
                    "content": [], "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": 12, "output_tokens": 1}}})
                yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
                yield event("ping", {})
                async for delta in self._paced(record):
                    yield event("content_block_delta", {"index": 0,
                                                        "delta": {"type": "text_delta", "text": delta}})
                yield event("content_block_stop", {"index": 0})
                yield event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                              "usage": {"output_tokens": record.tokens_sent}})
                yield event("message_stop", {})

            return StreamingResponse(sse(), media_type="text/event-stream")

        return app

    def start(self, port: int) -> FakeLLM:
        self.port = port
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
