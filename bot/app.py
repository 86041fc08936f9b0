"""The Starlette application and its lifespan (placeholder until the webhook server lands)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from bot.settings import Settings


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app for these settings."""

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def webhook(request: Request) -> JSONResponse:
        missing = settings.missing_app_settings
        if missing:
            return JSONResponse({"error": "setup mode: missing " + ", ".join(missing)}, status_code=503)
        return JSONResponse({"error": "not implemented"}, status_code=503)

    return Starlette(routes=[Route("/healthz", healthz), Route("/webhook", webhook, methods=["POST"])])


def serve(settings: Settings, host: str | None, port: int | None, workers: int | None, migrate: bool) -> int:
    """Run the server until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_config=None)
    return 0
