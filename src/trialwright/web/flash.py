"""What a post did, carried to the page it redirects to (POST-redirect-GET): a short-lived cookie.

A post that changes something answers a redirect to its page (so reloading the page never posts again); the
summary of what it did rides along in the ``trialwright_flash`` cookie, read once by the next page of the same
path and then cleared. The cookie is HttpOnly, SameSite=Lax, lives two minutes, and is sealed with an HMAC keyed
by the session's CSRF token, so only this session's own posts can put words on its pages: a cookie set by anyone
else, from another session or edited, is not shown. It holds what the post's own page showed (form and field
ids, counts, reasons), never a value entered and never an arm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from fastapi import Request, Response

from trialwright.web.security import secure_cookie
from trialwright.web.templating import Page

__all__ = ["FLASH_COOKIE", "MAX_BYTES", "clear_flash", "set_flash", "take_flash"]

FLASH_COOKIE = "trialwright_flash"
#: Browsers keep cookies of up to about 4,096 bytes; a summary larger than this is not sent (the caller says less).
MAX_BYTES = 3500


def _mac(key: str, body: str) -> str:
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]


def _encode(page: Page, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode()
    return f"{body}.{_mac(page.csrf_token, body)}"


def set_flash(
    response: Response, request: Request, page: Page, path: str, payload: dict[str, Any], *, forced_secure: bool
) -> bool:
    """Carry ``payload`` to the next page at ``path``; False (nothing set) when it does not fit."""
    value = _encode(page, payload)
    if len(value) > MAX_BYTES:
        return False
    response.set_cookie(FLASH_COOKIE, value, max_age=120, httponly=True, samesite="lax", path=path,
                        secure=secure_cookie(request, forced_secure))  # fmt: skip
    return True


def take_flash(request: Request, page: Page) -> dict[str, Any] | None:
    """The summary this session's last post left for this page, if any (clear it with ``clear_flash``)."""
    value = request.cookies.get(FLASH_COOKIE)
    if not value or not page.csrf_token or "." not in value:
        return None
    body, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac, _mac(page.csrf_token, body)):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def clear_flash(request: Request, response: Response) -> None:
    """Forget the summary once shown (a reload then shows the page without it)."""
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=request.url.path)
