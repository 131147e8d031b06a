"""Cookies and the CSRF rule.

A signed-in browser carries an opaque session token (stored server-side only as a hash) and every
state-changing form carries the session's CSRF token. Before sign-in, forms carry a double-submit token
that must equal the ``trialwright_csrf`` cookie. Tokens are compared in constant time.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CALENDAR_COOKIE",
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "SESSION_COOKIE",
    "AnonymousCsrf",
    "CsrfFailed",
    "Forbidden",
    "SignInRequired",
    "new_csrf_token",
    "secure_cookie",
    "tokens_match",
]

SESSION_COOKIE = "trialwright_session"
CSRF_COOKIE = "trialwright_csrf"
LANG_COOKIE = "trialwright_lang"
CALENDAR_COOKIE = "trialwright_calendar"


class SignInRequired(Exception):
    """The page needs a signed-in user."""

    def __init__(self, next_path: str = "/") -> None:
        self.next_path = next_path
        super().__init__("sign in required")


class Forbidden(Exception):
    """The signed-in user's role or sites do not allow this; carries the viewer's page for the answer."""

    def __init__(self, page: object = None) -> None:
        self.page = page
        super().__init__("forbidden")


class CsrfFailed(Exception):
    """A state-changing form without the right CSRF token; carries the viewer's page for the answer."""

    def __init__(self, page: object = None) -> None:
        self.page = page
        super().__init__("csrf token missing or wrong")


class AnonymousCsrf:
    """The middleware giving forms shown before sign-in their double-submit token: the ``trialwright_csrf`` cookie's,
    or a new one (``request.state.anonymous_csrf``) set as that cookie on the answer. A plain ASGI middleware (as
    ``web/headers.py``'s ``SecurityHeaders``, and for the same reason)."""

    def __init__(self, app: ASGIApp, secure_cookies: bool) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.cookies.get(CSRF_COOKIE)
        request.state.anonymous_csrf = token or new_csrf_token()
        if token is not None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = Response()
                cookie.set_cookie(
                    CSRF_COOKIE,
                    request.state.anonymous_csrf,
                    httponly=True,
                    samesite="lax",
                    secure=secure_cookie(request, self.secure_cookies),
                    path="/",
                )
                MutableHeaders(scope=message).append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def new_csrf_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


def secure_cookie(request: Request, forced: bool) -> bool:
    """Whether a cookie gets the ``Secure`` flag: always over HTTPS, and everywhere when the setting forces it."""
    return forced or request.url.scheme == "https"


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))
