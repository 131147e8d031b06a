"""The REST API's conventions, applied by the app to every route, whichever module adds it.

- **Operation ids**: the route function's name in camelCase (``save_form`` -> ``saveForm``), set by
  ``operation_id`` as the app's ``generate_unique_id_function``: stable while the function keeps its name, readable,
  and unique (a spec fails on two routes of one name).
- **Errors**: every operation under /api/ documents 400, 401, 403, 404, 409, 422 and 429 as
  ``application/problem+json`` ``ProblemDetails`` (``api/problems.py``), which the app's handlers answer, instead of
  FastAPI's ``HTTPValidationError``.
- **Auth**: the bearer scheme is declared by the dependency every API route takes (``web/deps.api_user``), so
  FastAPI applies it to exactly the operations that need a token.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from trialwright.api.problems import DOCUMENTED_ERRORS, PROBLEM_JSON, ProblemDetails

__all__ = ["install_openapi", "operation_id"]

_REF = "#/components/schemas/{model}"
_UNUSED = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """The operation id of a route: its function's name in camelCase (``list_participants`` -> ``listParticipants``)."""
    head, *rest = [part for part in re.split(r"_+", route.name) if part]
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _conventional(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template=_REF, mode="serialization")
    for name, schema in problem.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas["ProblemDetails"] = problem
    answer = {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="ProblemDetails")}}}
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in DOCUMENTED_ERRORS.items():
                responses[str(status)] = {"description": description, "content": answer}
            responses["429"]["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
    text = json.dumps(document)
    for name in _UNUSED:
        if f'"{_REF.format(model=name)}"' not in text:
            schemas.pop(name, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the document with the conventions above (built once, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = _conventional(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the document
