"""The statistician's page: the protocol's analysis on the current data, as the report shows it, with its
files to download. Blinded by default; the unblinded analysis only for the unblinded statistician after the
database lock. Everything goes through ``trialwright.services.analysis``.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import Engine

from trialwright.analysis import consort
from trialwright.analysis.report import render_html, render_pdf, results_json, svgs_for
from trialwright.domain.roles import Role
from trialwright.services import analysis as svc
from trialwright.services.forms import lock_state
from trialwright.web.deps import EngineDep, ProtocolDep, get_read_engine, require_roles
from trialwright.web.report_words import report_words
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import page_words, say

router = APIRouter()
AnalystPage = Annotated[Page, Depends(require_roles(*svc.ANALYSTS))]


def _yes(value: str) -> bool:
    """``?unblinded=1`` (or true, yes): anything else is the blinded analysis."""
    return value.strip().lower() in {"1", "true", "yes"}


def _fresh(response: Response) -> Response:
    """Each response is a new run on the current data: never cached, by the browser or on the way."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(request: Request, page: Page, exc: Exception) -> Response:
    message = say([str(exc)], page_words(None, page.lang), page.lang)[0]  # a rule of ``RULES`` in the page's language
    return render_page(request, page, "errors/error.html", {"status": 403, "message": message}, status_code=403)


def _run(request: Request, page: Page, engine: Engine, unblinded: str) -> svc.AnalysisRun | Response:
    """One run of the analysis for the signed-in analyst, or the page that says why it may not run."""
    assert page.user is not None
    try:
        return svc.run_analysis(engine, page.user, unblinded=_yes(unblinded), read_engine=get_read_engine(request))
    except svc.AnalysisError as exc:
        return _refused(request, page, exc)


@router.get("/analysis", response_class=HTMLResponse)
def analysis_page(
    request: Request, page: AnalystPage, engine: EngineDep, protocol: ProtocolDep, unblinded: str = ""
) -> Response:
    run = _run(request, page, engine, unblinded)
    if isinstance(run, Response):
        return run
    words = report_words(protocol, page.lang)
    body = render_html(run.report, svgs_for(run.report, words), fragment=True, words=words)
    context = {
        "report": run.report,
        "body": Markup(body),  # noqa: S704 - rendered by our own autoescaping template
        "query": "?unblinded=1" if _yes(unblinded) else "",
        "may_unblind": page.user is not None
        and page.user.role is Role.UNBLINDED_STATISTICIAN
        and lock_state(engine).locked,
    }
    return _fresh(render_page(request, page, "analysis/index.html", context))


@router.get("/analysis/report.html", response_class=HTMLResponse)
def report_html(
    request: Request, page: AnalystPage, engine: EngineDep, protocol: ProtocolDep, unblinded: str = ""
) -> Response:
    run = _run(request, page, engine, unblinded)
    if isinstance(run, Response):
        return run
    words = report_words(protocol, page.lang)
    return _fresh(HTMLResponse(render_html(run.report, svgs_for(run.report, words), words=words)))


@router.get("/analysis/report.pdf")
def report_pdf(
    request: Request, page: AnalystPage, engine: EngineDep, protocol: ProtocolDep, unblinded: str = ""
) -> Response:
    from trialwright.analysis import figures
    from trialwright.analysis.report import figures_for

    run = _run(request, page, engine, unblinded)
    if isinstance(run, Response):
        return run
    words = report_words(protocol, page.lang)
    pngs = {key: figures.to_png(fig) for key, fig in figures_for(run.report, words).items()}
    pngs["consort"] = consort.to_png(run.report.consort, words=words)
    return _fresh(
        Response(
            render_pdf(run.report, pngs, words=words),
            media_type="application/pdf",
            headers={"Content-Disposition": 'attachment; filename="report.pdf"'},
        )
    )


@router.get("/analysis/results.json")
def results(request: Request, page: AnalystPage, engine: EngineDep, unblinded: str = "") -> Response:
    run = _run(request, page, engine, unblinded)
    if isinstance(run, Response):
        return run
    return _fresh(
        Response(
            json.dumps(results_json(run.report), indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="results.json"'},
        )
    )


@router.get("/analysis/consort.svg")
def consort_svg(
    request: Request, page: AnalystPage, engine: EngineDep, protocol: ProtocolDep, unblinded: str = ""
) -> Response:
    run = _run(request, page, engine, unblinded)
    if isinstance(run, Response):
        return run
    svg = consort.to_svg(run.report.consort, report_words(protocol, page.lang))
    return _fresh(Response(svg, media_type="image/svg+xml"))
