"""The browser sharing page at ``/share/`` (issue 16): the files ``npm run build`` writes to ``web/dist``.

The page is static; it asks ``POST /api/v1/web-guests`` for a guest identity and speaks XMPP over WebSocket
to the address that answer names. Its Content-Security-Policy lets it load only its own files and connect
only to this API and that WebSocket service, so a script injected elsewhere could not run in it or send
what it captured anywhere else. When the page was not built, ``/share/`` says so and how to build it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from coalesce_cloud.core.config import Settings

SHARE_PATH = "/share/"
"""Where the page is served (and what the room display shows after the cloud's address)."""
PAGE_DIR = Path(__file__).resolve().parents[1] / "web" / "dist"
FILES = {"share.js": "text/javascript", "style.css": "text/css", "share.js.LEGAL.txt": "text/plain"}
NOT_BUILT = (
    "<!doctype html><title>Coalesce</title><h1>The sharing page is not built</h1>"
    "<p>The cloud's administrator needs to build it once: <code>cd coalesce_cloud/web && npm ci && npm run "
    "build</code> (scripts/setup.sh does this), then restart the cloud.</p>"
)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def page_headers(settings: Settings) -> dict[str, str]:
    """What every file of the page is sent with (its CSP names the XMPP WebSocket's origin)."""
    connect = " ".join(filter(None, ["'self'", _origin(settings.xmpp.websocket_url)]))
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "Permissions-Policy": "display-capture=(self), camera=(self), microphone=(self)",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def install_share_page(app: FastAPI, settings: Settings, page_dir: Path = PAGE_DIR) -> None:
    """Serve the page at ``/share/`` (``/share`` redirects there, so its relative links resolve). The
    handlers are plain functions: FastAPI runs them in its thread pool, where looking for a file may block."""
    router = APIRouter(include_in_schema=False)
    headers = page_headers(settings)

    @router.get(SHARE_PATH.rstrip("/"))
    def share_redirect() -> Response:
        return RedirectResponse(SHARE_PATH, status_code=308)

    @router.get(SHARE_PATH)
    def share_index() -> Response:
        index = page_dir / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=headers)
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=headers)

    @router.get(SHARE_PATH + "{name}")
    def share_file(name: str) -> Response:
        path = page_dir / name
        if name not in FILES or not path.is_file():
            return Response("not found", status_code=404, media_type="text/plain", headers=headers)
        return FileResponse(path, media_type=FILES[name], headers=headers)

    app.include_router(router)
