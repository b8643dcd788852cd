"""What both HTTP speech endpoints share: the route class (the voices API's too), auth, credits, voices
and the audio response.

A request's life: the body is capped (413), a gzip body decoded within the cap and other codings
refused (415); the caller is authenticated (401, the key in any form `credentials` accepts), before the body is
validated (422 naming the field and rule); the text is checked against the per-turn limit (413);
its credits are taken (402) before the voice is prepared or any inference starts; then it is spoken along
the websocket's path (`speech.speak`) into an audio file (`containers.FileEncoder`). A streamed
response is returned only once its first audio bytes exist, so a failure before any audio is still
a proper error status; a failure after that aborts the body. Credits of a request that fails before
its audio is complete are given back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from stream.accounts.auth import Caller
from stream.audio.containers import FORMATS, FileEncoder, output_rate
from stream.core.errors import (
    BadEncoding,
    BodyTooLarge,
    InvalidJson,
    ProtocolError,
    ServerShuttingDown,
    TextTooLong,
    Unsupported,
)
from stream.core.protocol import GenerationSettings, describe_error
from stream.engines.base import Voice
from stream.server import credentials
from stream.server.http.content_encoding import ACCEPTED, BoundedGunzip, is_gzip
from stream.server.one_shot import speak
from stream.server.runtime import Runtime
from stream.server.storage_outage import RETRY_AFTER_S, outage_error, refund_quietly
from stream.storage import StorageUnavailable

log = logging.getLogger("voicewire.http")

CLIENT_CLOSED_REQUEST = 499   # the status nginx logs for it; only ever seen in metrics, the client is gone
ErrorBody = Callable[[ProtocolError, str | None], dict]


class _CappedBody(HTTPException):
    """Raised while FastAPI reads the body (over the cap, or undecodable); FastAPI lets
    HTTPException through its body parsing."""

    def __init__(self, error: BodyTooLarge | BadEncoding) -> None:
        super().__init__(status_code=error.http_status, detail=error.message)
        self.error = error


def default_error_body(err: ProtocolError, field: str | None) -> dict:
    return err.to_message()


def describe_errors(errors: list[dict[str, Any]]) -> tuple[ProtocolError, str | None]:
    """FastAPI's first validation error as the protocol error naming its field and rule, and the field."""
    err = errors[0]
    if err.get("type") == "json_invalid":
        return InvalidJson(f"body: invalid JSON ({err.get('ctx', {}).get('error', err.get('msg'))})"), None
    field = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
    return describe_error(err, field), field


def api_route(error_body: ErrorBody) -> type[APIRoute]:
    """The route class of every HTTP API endpoint (speech and voices): caps the body, authenticates
    the caller, and turns validation and protocol errors into `error_body`."""

    class ApiRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()
            endpoint = self.path

            async def capped(request: Request) -> Response:
                runtime: Runtime = request.app.state.runtime
                limit = runtime.settings.limits.max_http_body_bytes
                try:
                    if runtime.draining:
                        raise ServerShuttingDown("server: this replica is draining; retry (another replica "
                                                 "will answer)")
                    declared = request.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise BodyTooLarge(f"body: {declared} bytes is over the {limit}-byte limit")
                    # Before the body is even validated: an unauthenticated caller learns nothing more.
                    key = credentials.request_key(request.headers, request.query_params)
                    request.state.caller = await asyncio.to_thread(credentials.authenticate, runtime.auth, key)
                    gzipped = is_gzip(request.headers.get("content-encoding"))
                    response = await handler(_CappedRequest(request.scope, request.receive, limit, gzipped))
                except _CappedBody as exc:
                    response = error_response(exc.error, None, error_body, runtime)
                except RequestValidationError as exc:
                    err, field = describe_errors(list(exc.errors()))
                    response = error_response(err, field, error_body, runtime)
                except ProtocolError as exc:
                    response = error_response(exc, None, error_body, runtime)
                except StorageUnavailable as exc:
                    err = outage_error(exc, "the request cannot be authorized, charged or its voice found")
                    response = error_response(err, None, error_body, runtime)
                runtime.metrics.http_requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
                return response

            return capped

    return ApiRoute


class _CappedRequest(Request):
    def __init__(self, scope, receive, limit: int, gzipped: bool) -> None:
        super().__init__(scope, receive)
        self._limit = limit
        self._gzipped = gzipped

    async def stream(self) -> AsyncIterator[bytes]:
        seen = 0
        gunzip = BoundedGunzip(self._limit) if self._gzipped else None
        try:
            async for chunk in super().stream():
                seen += len(chunk)
                if seen > self._limit:
                    raise BodyTooLarge(f"body: over the {self._limit}-byte limit")
                yield chunk if gunzip is None else gunzip.feed(chunk)
            if gunzip is not None:
                gunzip.finish()
        except (BodyTooLarge, BadEncoding) as exc:
            raise _CappedBody(exc) from None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


def parse_json(body: bytes) -> Any:
    """`json.loads`, except that every body it cannot parse raises `JSONDecodeError`: FastAPI answers
    only that with a validation error (here `invalid_json`) and the rest with a bare 400, and JSON
    nested past the recursion limit, bytes that are not UTF-8 or an integer over 4300 digits raise
    `RecursionError` or another `ValueError`."""
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]  # no set_int_max_str_digits advice
        raise json.JSONDecodeError(reason, "", 0) from None


def error_response(err: ProtocolError, field: str | None, error_body: ErrorBody, runtime: Runtime) -> JSONResponse:
    runtime.metrics.errors.labels(code=err.code).inc()
    headers = {"www-authenticate": "Bearer"} if err.http_status == 401 else None
    if isinstance(err, BadEncoding):
        headers = {"accept-encoding": ACCEPTED}   # RFC 9110: a 415 for a coding names the ones accepted
    if err.http_status == 503:
        headers = {"retry-after": str(RETRY_AFTER_S)}   # draining or database down: retry soon
    return JSONResponse(error_body(err, field), status_code=err.http_status, headers=headers)


def describe_generation_fields(schema: dict) -> None:
    """OpenAPI descriptions of the generation fields request models inherit, in the hosted API's words."""
    notes = {
        "exaggeration": "Speech expressiveness: lower is neutral, higher dramatic. 0-2, default 0.5.",
        "temperature": "Speech variation: lower is consistent, higher diverse. 0-2, default 0.8.",
        "cfg_weight": "Adherence to the text (lower) vs. freedom (higher). 0-2, default 0.5.",
        "min_p": "Minimum token probability kept when sampling. 0-1, default 0.05.",
        "top_p": "Nucleus sampling mass. 0-1, default 1.0.",
        "repetition_penalty": "Penalizes repeated speech tokens. 1-2, default 1.2.",
        "seed": "Same seed, text, voice and settings give identical audio on the same engine and device; "
                "omitted or null = random.",
        "language": "Language code for multilingual engines (e.g. 'en', 'fr').",
        "speed": "Speaking rate multiplier, where the engine supports it. 0.25-4, default 1.0.",
    }
    for name, text in notes.items():
        schema["properties"][name]["description"] = text


def generation_of(body: BaseModel) -> GenerationSettings:
    """The generation fields of a request model that extends `GenerationSettings`; only those the
    request set count as set, so an engine variant's own defaults fill the rest (Turbo's top_p)."""
    return GenerationSettings(**body.model_dump(include=set(GenerationSettings.model_fields), exclude_unset=True))


def is_url(reference: str) -> bool:
    head = reference[:16].lower()
    return "://" in head and not head.startswith("data:")


@dataclass
class SpeechJob:
    """One validated, authenticated and paid-for request, ready to be spoken."""

    runtime: Runtime
    caller: Caller | None
    text: str
    remaining_credits: int | None


async def admit(request: Request, text: str, field: str = "text") -> SpeechJob:
    """Authenticate, check the text limit and take the credits, in that order."""
    runtime: Runtime = request.app.state.runtime
    caller: Caller | None = request.state.caller
    limit = runtime.settings.limits.max_text_chars_per_context
    if len(text) > limit:
        raise TextTooLong(f"{field}: at most {limit} characters per request (got {len(text)})")
    remaining = await runtime.auth.charge(caller, len(text))
    return SpeechJob(runtime, caller, text, remaining)


async def resolve_voice(job: SpeechJob, reference_audio: str | None, voice: str | None,
                        reference_field: str = "reference_audio") -> Voice:
    """The voice to speak with: a reference clip (URL, base64 or data: URI), a stored voice, or the default."""
    runtime = job.runtime
    if reference_audio is None:
        return await runtime.voices.resolve(voice)
    if not runtime.engine.capabilities.voice_cloning:
        raise Unsupported(f"{reference_field}: the {runtime.engine.name} engine cannot clone voices")
    if is_url(reference_audio):
        clip = (await runtime.fetcher.fetch(reference_audio)).clip
    else:
        clip = await runtime.voices.decode(reference_audio, reference_field)  # off the loop; errors name the field
    return await runtime.voices.clone(clip)


class ClientDisconnected(Exception):
    """The client went away before its answer started: synthesis stops, nothing is billed."""


async def audio_response(request: Request, job: SpeechJob, voice: Voice, generation: GenerationSettings,
                         format_name: str, sample_rate: int, streaming: bool) -> Response:
    """Speak the job's text into a `format_name` file: streamed (chunked) or complete.

    Until the answer starts, each chunk checks that the client is still there, so a caller who gives
    up on a long complete file does not keep the engine busy (a streamed body stops by itself)."""
    runtime = job.runtime
    fmt = FORMATS[format_name]
    rate = output_rate(fmt, sample_rate)
    encoder = FileEncoder(fmt, runtime.engine.sample_rate, rate, streaming)
    headers = {"x-sample-rate": str(rate), "x-characters": str(len(job.text))}
    if job.remaining_credits is not None:
        headers["x-remaining-credits"] = str(job.remaining_credits)
    audio = speak(runtime, job.text, voice, generation)
    try:
        parts: list[bytes] = []
        async for chunk in audio:
            parts.append(encoder.write(chunk))
            if encoder.streaming and parts[-1]:
                break
            if await request.is_disconnected():
                raise ClientDisconnected()
        else:
            parts.append(encoder.close())
            return Response(b"".join(parts), media_type=fmt.media_type, headers=headers)
        first = b"".join(parts)
    except BaseException:
        await audio.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in audio:
                if data := encoder.write(chunk):
                    yield data
            yield encoder.close()
        except ProtocolError as exc:
            log.error("speech response aborted after its first bytes: %s", exc.message)
            await refund_quietly(runtime.auth, job.caller, len(job.text))
            raise
        finally:
            await audio.aclose()

    return StreamingResponse(body(), media_type=fmt.media_type, headers=headers)


async def speak_request(request: Request, text: str, reference_audio: str | None, voice: str | None,
                        generation: GenerationSettings, format_name: str, sample_rate: int | None,
                        streaming: bool) -> Response:
    """The whole life of a speech request after validation (see the module docstring)."""
    job = await admit(request, text)
    try:
        resolved = await resolve_voice(job, reference_audio, voice)
        return await audio_response(request, job, resolved, generation, format_name,
                                    sample_rate or job.runtime.engine.sample_rate, streaming)
    except ClientDisconnected:
        await refund_quietly(job.runtime.auth, job.caller, len(text))
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except BaseException:
        await refund_quietly(job.runtime.auth, job.caller, len(text))
        raise
