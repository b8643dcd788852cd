"""Anthropic Messages streams into voicewire."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from clients.client import VoicewireClient

from .llm_stream import ReplySpeech, speak_stream


async def anthropic_text(events: AsyncIterable[Any]) -> AsyncIterator[str]:
    """The text of a streamed message (`messages.create(stream=True)` events), delta by delta.

    Thinking and tool-input deltas are not speech and are skipped.
    """
    async for event in events:
        if event.type == "content_block_delta" and event.delta.type == "text_delta" and event.delta.text:
            yield event.delta.text


async def anthropic_reply(llm: Any, **create_kwargs: Any) -> AsyncIterator[str]:
    """Start a streamed message on an `anthropic.AsyncAnthropic` client and yield its text.

    Closing this generator (barge-in) closes the HTTP response, so generation stops.
    """
    stream = await llm.messages.create(stream=True, **create_kwargs)
    try:
        async for text in anthropic_text(stream):
            yield text
    finally:
        await stream.close()


def speak_anthropic(client: VoicewireClient, llm: Any, *, voice: Any = None, generation: dict | None = None,
                    context_id: str | None = None, **create_kwargs: Any) -> ReplySpeech:
    """Speak the reply of `llm.messages.create(**create_kwargs)` as it streams; settings are per turn."""
    return speak_stream(client, anthropic_reply(llm, **create_kwargs), voice=voice, generation=generation,
                        context_id=context_id)
