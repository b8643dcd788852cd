"""`voicewire voices`: list the voices a running server can speak with (`GET /v1/voices`).

The engine's built-in voices come first (Piper's `joe`, a Chatterbox checkpoint's own voice), then
the stored ones. Any of them can be given to `voicewire say --voice`.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from .endpoint import API_KEY_ENV, EndpointError, add_server_options, resolve, shown

HTTP_SCHEMES = {"ws": "http", "wss": "https"}
TIMEOUT_S = 10.0


class VoiceListing(BaseModel):
    """One entry of `GET /v1/voices`; a newer server's extra fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    builtin: bool = False
    description: str | None = None     # built-in voices
    seconds: float | None = None       # stored voices: length of the reference clip
    format: str | None = None


class VoiceList(BaseModel):
    model_config = ConfigDict(extra="ignore")
    voices: list[VoiceListing]


def add_voices_parser(sub: argparse._SubParsersAction) -> None:
    voices = sub.add_parser("voices", help="list the voices of a running voicewire server",
                            description="List the voices a running server can speak with: the engine's "
                                        "built-in ones first, then stored ones (GET /v1/voices).")
    add_server_options(voices)
    voices.add_argument("--json", action="store_true", help="print the server's JSON answer")
    voices.set_defaults(func=run_voices)


def voices_url(stream: str) -> str:
    """`http(s)://host:port/v1/voices` for the server whose stream is at `stream` (a ws(s) URL)."""
    parts = urlsplit(stream)
    return urlunsplit((HTTP_SCHEMES[parts.scheme], parts.netloc, "/v1/voices", parts.query, ""))


def fetch_voices(url: str, api_key: str | None) -> httpx.Response:
    headers = {"x-api-key": api_key} if api_key else {}
    return httpx.get(url, headers=headers, timeout=TIMEOUT_S)


def describe(voice: VoiceListing) -> str:
    if voice.builtin:
        return f"{voice.id}\t{voice.name}\tbuilt-in\t{voice.description or ''}"
    clip = f"{voice.seconds:.1f} s {voice.format or ''}".strip() if voice.seconds is not None else ""
    return f"{voice.id}\t{voice.name}\tstored\t{clip}"


def run_voices(args: argparse.Namespace) -> int:
    try:
        url = voices_url(resolve(args))
    except EndpointError as exc:
        print(f"voices: {exc}", file=sys.stderr)
        return 2
    try:
        response = fetch_voices(url, args.api_key)
    except httpx.HTTPError as exc:
        print(f"voices: cannot reach {shown(url)}: {exc}; is `voicewire serve` running there?", file=sys.stderr)
        return 1
    if response.status_code == 401:
        print(f"voices: {shown(url)} answered HTTP 401: pass a valid key with --api-key KEY or {API_KEY_ENV}",
              file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"voices: {shown(url)} answered HTTP {response.status_code}: {response.text[:200]}", file=sys.stderr)
        return 1
    if args.json:
        print(response.text)
        return 0
    try:
        listing = VoiceList.model_validate_json(response.content)
    except ValidationError:
        print(f"voices: {shown(url)} did not answer with a voice list; is it a voicewire server?", file=sys.stderr)
        return 1
    for voice in listing.voices:
        print(describe(voice))
    return 0
