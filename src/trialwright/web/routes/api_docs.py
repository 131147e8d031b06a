"""The interactive API documentation (Swagger UI), served from this package when the ``api_docs`` setting is on.

Its script and style are files of ``web/static/swagger`` (swagger-ui-dist, Apache-2.0) and it starts from a
script of ours there too, so the page keeps the same Content-Security-Policy as every other: scripts from this
site only, no inline script, no CDN.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from trialwright.web.headers import API_DOCS_PATH

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: API documentation</title>
<link rel="stylesheet" href="/static/swagger/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/swagger/trialwright.js"></script>
</body>
</html>
"""


@router.get(API_DOCS_PATH, response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI on this server's /openapi.json."""
    return HTMLResponse(_PAGE.format(title=html.escape(request.app.title)))
