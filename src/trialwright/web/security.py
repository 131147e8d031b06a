"""Cookies and the CSRF rule.

A signed-in browser carries an opaque session token (stored server-side only as a hash) and every
state-changing form carries the session's CSRF token. Before sign-in, forms carry a double-submit token
that must equal the ``trialwright_csrf`` cookie. Tokens are compared in constant time.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request

__all__ = [
    "CALENDAR_COOKIE",
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "SESSION_COOKIE",
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


def new_csrf_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


def secure_cookie(request: Request, forced: bool) -> bool:
    """Whether a cookie gets the ``Secure`` flag: always over HTTPS, and everywhere when the setting forces it."""
    return forced or request.url.scheme == "https"


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))
