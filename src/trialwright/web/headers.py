"""Security headers on every answer: what a browser may load, frame, sniff, send on, remember and use.

One middleware (``SecurityHeaders``) sets them on pages, the REST API, error pages and static files alike
(static files may be cached; nothing else may). The content security policy allows scripts only from this site,
so no page holds inline script; inline *style* is allowed because the SVG charts drawn by matplotlib and the study
report embedded in the analysis page carry ``<style>`` elements and ``style`` attributes. HSTS is sent only on an
answer over HTTPS, where the browser honours it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_DOCS_PATH", "CONTENT_SECURITY_POLICY", "SecurityHeaders", "apply_security_headers", "is_https"]

#: The interactive API documentation (Swagger UI), off by default (setting ``api_docs``).
API_DOCS_PATH = "/docs"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_HSTS = "max-age=31536000; includeSubDomains"


def is_https(request: Request) -> bool:
    """Whether the browser reached us over TLS (behind a proxy: as uvicorn's trusted proxy headers say)."""
    return request.url.scheme == "https"


def apply_security_headers(request: Request, response: Response) -> Response:
    """Set the headers on ``response`` (idempotent); returns it."""
    _set(response.headers, request.url.path, is_https(request))
    return response


def _set(headers: MutableHeaders, path: str, https: bool) -> None:
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    for name, value in _ALWAYS.items():
        headers[name] = value
    if https:
        headers["Strict-Transport-Security"] = _HSTS
    if not path.startswith("/static/"):
        # Pages and API answers may hold participant data: kept by no browser or proxy cache.
        headers["Cache-Control"] = "no-store"


class SecurityHeaders:
    """The middleware (errors that escape every handler get the headers in the 500 handler). A plain ASGI one, not
    ``@app.middleware("http")``: that runs the rest of the app in a task of its own and relays a request body
    through a stream, which cost an API save about half a millisecond of CPU more than a GET
    (docs/benchmarks.md, "Form saves over HTTP: ...")."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _set(MutableHeaders(scope=message), request.url.path, is_https(request))
            await send(message)

        await self.app(scope, receive, send_with_headers)
