"""The REST API reference (docs/api-reference.md), generated from the app's own OpenAPI document.

``python -m trialwright.web.api_reference [PROTOCOL] > docs/api-reference.md`` regenerates it (the app is built on
a throw-away SQLite trial of ``PROTOCOL``, by default the first trial's file; no route depends on the trial). A test
fails when the committed file differs from what the app declares, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["openapi_document", "render_api_reference"]

_HEADER = """# REST API reference

Generated from the app's OpenAPI document by `python -m trialwright.web.api_reference > docs/api-reference.md`;
do not edit by hand (a test compares it with the app). [api.md](api.md) explains authentication, paging, errors
and masking; the running app serves the same document at `/openapi.json` (and Swagger UI at `/docs` when the
`api_docs` setting is on).
"""

_TABLE_HEAD = "| method | path | operation id: what it does | request body | responses |"
_METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document(protocol_file: Path) -> dict[str, Any]:
    """The OpenAPI document of the app, built on a throw-away SQLite trial of ``protocol_file``."""
    from trialwright.protocol import load_protocol
    from trialwright.services.trial import init_trial
    from trialwright.settings import Settings
    from trialwright.store.engine import make_engine
    from trialwright.web.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'reference.db'}"
        engine = make_engine(url)
        try:
            init_trial(engine, load_protocol(protocol_file))
        finally:
            engine.dispose()
        app = create_app(Settings(database_url=url))
        document: dict[str, Any] = app.openapi()
        app.state.engine.dispose()
        return document


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return "`" + str(schema["$ref"]).rsplit("/", 1)[-1] + "`"
    if schema.get("type") == "array":
        inner = _schema_name(schema.get("items"))
        return f"list of {inner}" if inner else "list"
    return str(schema.get("type", "object"))


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    return "; ".join(f"{_schema_name(spec.get('schema'))} ({kind})" for kind, spec in sorted(content.items()))


def _responses(operation: dict[str, Any]) -> str:
    """Each status with its body; statuses with the same bodies said once (``400, 401, 403 `ProblemDetails```)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for code, response in sorted(operation.get("responses", {}).items()):
        content = response.get("content", {})
        shapes = ", ".join(sorted({_schema_name(spec.get("schema")) for spec in content.values()} - {""}))
        groups.setdefault(("error" if code[0] in "45" else code, shapes), []).append(code)
    return "; ".join(", ".join(codes) + (f" {shapes}" if shapes else "") for (_, shapes), codes in groups.items())


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render_api_reference(document: dict[str, Any]) -> str:
    """Markdown: the operations grouped by tag (method, path, what it does, request body, responses), then the
    parameters of each operation that takes any."""
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    for path, item in sorted(document.get("paths", {}).items()):
        for method in _METHODS:
            if method in item:
                operation = item[method]
                for tag in operation.get("tags") or ["other"]:
                    by_tag[tag].append((method.upper(), path, operation))
    schemes = ", ".join(f"`{name}`" for name in document.get("components", {}).get("securitySchemes", {}))
    lines = [_HEADER, f"OpenAPI {document.get('openapi', '?')}; {sum(map(len, by_tag.values()))} operations.",
             f"Security schemes: {schemes or 'none'}; every operation under /api/ needs it. Errors are "
             "`ProblemDetails` (`application/problem+json`, [api.md](api.md#conventions)).", ""]  # fmt: skip
    for tag in sorted(by_tag):
        lines += [f"## {tag}", "", _TABLE_HEAD, "|---|---|---|---|---|"]
        for method, path, operation in by_tag[tag]:
            said = operation.get("description") or operation.get("summary") or ""
            summary = f"`{operation.get('operationId', '')}`: {said.split(chr(10) + chr(10), 1)[0]}"
            cells = (method, f"`{path}`", _cell(summary), _cell(_body(operation)), _cell(_responses(operation)))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    schemas = sorted(document.get("components", {}).get("schemas", {}))
    lines += ["## Schemas", "", ", ".join(f"`{name}`" for name in schemas) or "none", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    protocol_file = Path(argv[0]) if argv else Path("protocols") / "IRCT20190101042197N2.yaml"
    sys.stdout.write(render_api_reference(openapi_document(protocol_file)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
