"""The HTTP + websocket application: one port for `/v1/stream`, health, metrics and the HTTP API."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Response, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse

from stream.server.compat import routes as compat
from stream.server.health import Readiness
from stream.server.http import chatterbox_tts as http_tts
from stream.server.http import openai_speech as http_openai
from stream.server.http import voices as http_voices
from stream.server.runtime import Runtime
from stream.server.websocket import Connection

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WEB_PAGE = files("clients") / "web" / "index.html"
FAVICON = files("clients") / "web" / "favicon.svg"


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime.sessions.start_heartbeat()   # sweeps other replicas' expired credit holds even with no session here
        yield
        await runtime.drain()   # a no-op when `voicewire serve`'s SIGTERM handling drained already
        runtime.close()

    app = FastAPI(
        title="voicewire",
        version="0.1.0",
        summary="Real-time streaming voice for conversational agents.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.include_router(http_tts.router)
    app.include_router(http_openai.router)
    app.include_router(http_voices.router)
    app.include_router(compat.router)

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        """The browser page: type text, hear it stream (clients/web/index.html)."""
        return HTMLResponse(WEB_PAGE.read_text(encoding="utf-8"))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        """The page's icon (SVG; browsers ask for this path whatever the page links), so it is no 404."""
        return Response(FAVICON.read_bytes(), media_type="image/svg+xml",
                        headers={"cache-control": "public, max-age=86400"})

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await Connection(ws, runtime).run()

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        """What is loaded and where: the engine, this replica's name, its open sessions, whether it drains."""
        engine = runtime.engine
        return {
            "status": "ok",
            "engine": engine.name,
            "model": engine.model,
            "sample_rate": engine.sample_rate,
            "sessions": runtime.active_sessions(),
            "replica": runtime.replica,
            "draining": runtime.draining,
            "limits": runtime.executor.limits().to_wire(),
        }

    @app.get("/livez", tags=["operations"])
    async def livez() -> dict:
        """Liveness: the process answers (200 while it serves, draining included)."""
        return {"status": "ok", "replica": runtime.replica}

    @app.get("/readyz", tags=["operations"], response_model=Readiness)
    async def readyz() -> JSONResponse:
        """Readiness: 200 when the engine is loaded, the database answers and the replica is not
        draining; else 503, `failed` naming the checks that failed."""
        readiness = await runtime.readiness()
        return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(runtime.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    return app
