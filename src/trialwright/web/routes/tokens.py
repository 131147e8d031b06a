"""An administrator's view of a user's API tokens: list them, revoke one (a person's own: /profile)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.roles import Role
from trialwright.services.tokens import list_tokens, revoke_token
from trialwright.services.users import UserError
from trialwright.web.deps import CsrfChecked, EngineDep, RowId, require_roles
from trialwright.web.security import Forbidden
from trialwright.web.templating import Page, render_page

__all__ = ["router"]

router = APIRouter()
AdminPage = Annotated[Page, Depends(require_roles(Role.ADMINISTRATOR))]
Username = Annotated[str, Path(max_length=64)]


@router.get("/admin/users/{username}/tokens", response_class=HTMLResponse)
def user_tokens(request: Request, page: AdminPage, engine: EngineDep, username: Username) -> Response:
    assert page.user is not None
    try:
        found = list_tokens(engine, username, viewer=page.user)
    except UserError as exc:
        if not str(exc).startswith("username: no user"):
            raise Forbidden(page) from None
        return render_page(request, page, "errors/error.html", {"status": 404, "message": str(exc)}, status_code=404)
    context = {"owner": username.strip().lower(), "tokens": found, "error": None}
    return render_page(request, page, "tokens/user.html", context)


@router.post("/admin/users/{username}/tokens/{token_id}/revoke")
def revoke(page: AdminPage, engine: EngineDep, _csrf: CsrfChecked, username: Username, token_id: RowId) -> Response:
    assert page.user is not None
    revoke_token(engine, token_id, actor=page.user.username, owner=username, viewer=page.user)
    return RedirectResponse(f"/admin/users/{quote(username.strip().lower())}/tokens", status_code=303)
