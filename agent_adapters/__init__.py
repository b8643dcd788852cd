"""Bridges from agent stacks into voicewire.

LLM token streams live here and import only the client; the framework plugins
(`agent_adapters.pipecat_tts`, `agent_adapters.livekit_tts`) import their framework and are
imported explicitly (`pip install 'voicewire[adapters]'`).
"""

from .anthropic_stream import anthropic_reply, anthropic_text, speak_anthropic
from .llm_stream import ReplySpeech, SpokenReply, speak_stream
from .openai_stream import openai_reply, openai_text, speak_openai

__all__ = [
    "ReplySpeech", "SpokenReply", "anthropic_reply", "anthropic_text", "openai_reply", "openai_text",
    "speak_anthropic", "speak_openai", "speak_stream",
]
