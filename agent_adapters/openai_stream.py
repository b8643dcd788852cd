"""OpenAI-compatible chat-completion streams (OpenAI, vLLM, Ollama, llama.cpp, ...) into voicewire."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from clients.client import VoicewireClient

from .llm_stream import ReplySpeech, speak_stream


async def openai_text(chunks: AsyncIterable[Any]) -> AsyncIterator[str]:
    """The reply text of a streamed chat completion (`stream=True`), delta by delta.

    Only the first choice is spoken; tool-call and role-only chunks carry no text and are skipped.
    """
    async for chunk in chunks:
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta is not None and choice.delta.content:
                yield choice.delta.content


async def openai_reply(llm: Any, **create_kwargs: Any) -> AsyncIterator[str]:
    """Start a streamed chat completion on an `openai.AsyncOpenAI` client and yield its text.

    Closing this generator (barge-in) closes the HTTP response, so the LLM server stops generating.
    """
    stream = await llm.chat.completions.create(stream=True, **create_kwargs)
    try:
        async for text in openai_text(stream):
            yield text
    finally:
        await stream.close()


def speak_openai(client: VoicewireClient, llm: Any, *, voice: Any = None, generation: dict | None = None,
                 context_id: str | None = None, **create_kwargs: Any) -> ReplySpeech:
    """Speak the reply of `llm.chat.completions.create(**create_kwargs)` as it streams.

    `generation` (e.g. `{"exaggeration": 0.8}`) and `voice` apply to this turn only.
    """
    return speak_stream(client, openai_reply(llm, **create_kwargs), voice=voice, generation=generation,
                        context_id=context_id)
