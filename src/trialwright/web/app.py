"""``create_app(settings)``: the FastAPI application, pages and REST API, on the trial database.

Everything is built here from the settings passed in: the engine, the access policy and the trial's
protocol (read from the database). Errors are rendered as pages for browsers and as JSON under /api;
none reveals whether something exists, and no request ends in a bare 500. Every /api/ error is an RFC 9457
problem (``application/problem+json``, ``api/problems.py``), whatever route raised it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from trialwright import __version__
from trialwright.api.problems import problem_response
from trialwright.legacy import ENV_PREFIX
from trialwright.services.audit import chain_pending
from trialwright.services.audit_keys import check_key, engine_for, write_anchor
from trialwright.services.ratelimit import Limits, RateLimited
from trialwright.services.reauth import access_policy
from trialwright.services.replica import read_engine_for
from trialwright.services.trial import current_protocol
from trialwright.services.users import prepare_sign_in
from trialwright.settings import Settings
from trialwright.store.engine import check_connection
from trialwright.web.headers import SecurityHeaders, apply_security_headers
from trialwright.web.i18n import DEFAULT_LANGUAGE, N_
from trialwright.web.localized import trial_title
from trialwright.web.openapi import install_openapi, operation_id
from trialwright.web.security import LANG_COOKIE, AnonymousCsrf, CsrfFailed, Forbidden, SignInRequired
from trialwright.web.templating import Page, render_page

__all__ = ["app_from_environment", "create_app", "environment_of"]

log = logging.getLogger("trialwright.web")
_STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings) -> FastAPI:
    """The web app for the trial in ``settings.database_url`` (which must hold a trial: trialwright init)."""
    engine = engine_for(settings)
    check_connection(engine)
    protocol = current_protocol(engine).protocol

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Refused API tokens still being counted are audited before the process ends.
        app.state.limits.refusal_tally.flush(engine)

    prepare_sign_in()  # the unknown-user hash, made before the first sign-in (services/users.py)
    check_key(engine)  # a keyed trial without its key is refused now, not at the first write
    chain_pending(engine)  # entries a crash left unchained (PostgreSQL) are chained before anything else
    # A checkpoint of the trail's head each time the app starts: the tail written before now can no longer be
    # cut off unseen. A file that cannot be written is said in the log, not a reason to stay down.
    try:
        write_anchor(engine)
    except OSError as exc:
        log.warning("audit anchor not written: %s", exc)
    app = FastAPI(
        title=f"trialwright: {protocol.trial_id}",
        version=__version__,
        description="REST API of a trial run with trialwright. Authenticate with `Authorization: Bearer <token>`.",
        # Swagger UI is served from this package (web/routes/api_docs.py) when the api_docs setting is on.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,  # every route's operation id, whichever module adds it
    )
    install_openapi(app)
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine_for(settings, engine)  # the analysis and exports read here
    app.state.protocol = protocol  # as at start: only the short name on bare error pages (deps.get_protocol)
    app.state.policy = access_policy(settings)
    app.state.limits = Limits.from_settings(settings, engine)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    if settings.api_docs:
        from trialwright.web.routes.api_docs import router as api_docs_router

        app.include_router(api_docs_router)

    from trialwright.api.analysis import router as analysis_api
    from trialwright.api.audit import router as audit_api
    from trialwright.api.exports import router as exports_api
    from trialwright.api.forms import router as forms_api
    from trialwright.api.lock import router as lock_api
    from trialwright.api.logs import router as logs_api
    from trialwright.api.randomization import router as randomization_api
    from trialwright.api.recruitment import router as recruitment_api
    from trialwright.api.redcap import router as redcap_api
    from trialwright.api.routes import router as api_router
    from trialwright.api.safety import router as safety_api
    from trialwright.api.screening import router as screening_api
    from trialwright.web.routes import analysis as analysis_pages
    from trialwright.web.routes import audit, auth, data, home, lock, profile, randomization, safety, screening, users
    from trialwright.web.routes import casebook as casebook_pages
    from trialwright.web.routes import coding as coding_pages
    from trialwright.web.routes import exports as export_pages
    from trialwright.web.routes import logs as log_pages
    from trialwright.web.routes import recruitment as recruitment_pages
    from trialwright.web.routes import tokens as token_pages
    from trialwright.web.routes import worklist as worklist_pages

    pages = (auth, home, profile, audit, users, screening, randomization, data, lock, safety, analysis_pages,
             recruitment_pages, export_pages, token_pages, worklist_pages, casebook_pages, coding_pages,
             log_pages)  # fmt: skip
    for router in (module.router for module in pages):
        app.include_router(router, include_in_schema=False)
    app.include_router(api_router)
    app.include_router(screening_api)
    app.include_router(randomization_api)
    app.include_router(forms_api)
    app.include_router(logs_api)
    app.include_router(lock_api)
    app.include_router(safety_api)
    app.include_router(recruitment_api)
    app.include_router(audit_api)
    app.include_router(exports_api)
    app.include_router(analysis_api)
    app.include_router(redcap_api)

    app.add_middleware(AnonymousCsrf, secure_cookies=settings.secure_cookies)
    app.add_middleware(SecurityHeaders)  # added last: the outermost, so it covers every answer
    _install_error_handlers(app)
    return app


def app_from_environment() -> FastAPI:
    """The app for the settings in the environment: what each worker process builds (``trialwright serve
    --workers N``, or ``uvicorn --factory trialwright.web.app:app_from_environment --workers N``)."""
    return create_app(Settings())


def environment_of(settings: Settings) -> dict[str, str]:
    """The environment variables that give a worker process exactly ``settings`` (every setting, set or not)."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        out[f"{ENV_PREFIX}{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _bare_page(request: Request) -> Page:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANGUAGE)
    lang = lang if lang in {"en", "fa"} else DEFAULT_LANGUAGE
    csrf = getattr(request.state, "anonymous_csrf", "")
    return Page(
        user=None,
        lang=lang,
        calendar="both",
        csrf_token=csrf,
        trial_name=trial_title(request.app.state.protocol, lang),
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str, page: Page | None = None) -> Response:
    if _is_api(request):
        return problem_response(status, message, request.url.path)
    return render_page(
        request,
        page or _bare_page(request),
        "errors/error.html",
        {"status": status, "message": message},
        status_code=status,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/sign-in?next={exc.next_path}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(
            request,
            403,
            N_("Your role does not give access to this page."),
            exc.page if isinstance(exc.page, Page) else None,
        )

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return _error(
            request,
            403,
            N_("This form has expired or did not come from trialwright. Reload the page and try again."),
            exc.page if isinstance(exc.page, Page) else None,
        )

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        answer = _error(request, 429, N_("Too many attempts. Wait a little, then try again."))
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return problem_response(exc.status_code, exc.detail, request.url.path, exc.headers)
        messages = {404: N_("There is no such page."), 405: N_("This page cannot be used that way.")}
        return _error(request, exc.status_code, messages.get(exc.status_code, N_("The request was refused.")))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                # A body that is not JSON at all is located at a character offset, not a field: it is the body.
                "field": "body"
                if e["type"] == "json_invalid"
                else ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
                "rule": e["msg"],
            }
            for e in exc.errors()
        ]
        if _is_api(request):
            return problem_response(422, problems, request.url.path)
        text = "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
        return _error(request, 422, f"The request has invalid values: {text}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Logged without the request body (it may hold personal data); the answer reveals nothing.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        # This handler answers outside the middleware stack: the headers are set here.
        answer = _error(request, 500, N_("Something went wrong. The error has been logged."))
        return apply_security_headers(request, answer)
