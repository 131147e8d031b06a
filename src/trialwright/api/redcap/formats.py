"""REDCap's request and answer formats: form-encoded parameters in, JSON, CSV or XML out, errors as REDCap
writes them (``{"error": "..."}``, ``ERROR: ...`` for CSV, ``<hash><error>...</error></hash>`` for XML)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from trialwright.domain.redcap import RedcapError

__all__ = ["Params", "answer", "error", "rows_of"]

FORMATS = ("json", "csv", "xml")
_ARRAY = re.compile(r"^(\w+)\[(\d*)\]$")


class Params:
    """The request's parameters; an array is sent as ``name[0]=a&name[1]=b``, ``name[]=a`` or ``name=a,b``."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self.single: dict[str, str] = {}
        self.arrays: dict[str, list[tuple[int, str]]] = {}
        for key, value in items:
            m = _ARRAY.match(key)
            if m:
                held = self.arrays.setdefault(m.group(1), [])
                held.append((int(m.group(2) or len(held)), value))
            else:
                self.single[key] = value

    def get(self, key: str, default: str = "") -> str:
        return self.single.get(key, default).strip() if key in self.single else default

    def array(self, key: str) -> tuple[str, ...]:
        """The values of an array parameter, in their order (a comma-separated text split)."""
        if key in self.arrays:
            return tuple(v.strip() for _, v in sorted(self.arrays[key]) if v.strip())
        return tuple(p.strip() for p in self.single.get(key, "").split(",") if p.strip())

    def flag(self, key: str) -> bool:
        """A boolean parameter: true/1 or false/0/absent; anything else is refused."""
        value = self.get(key).lower()
        if value in {"", "false", "0"}:
            return False
        if value in {"true", "1"}:
            return True
        raise RedcapError(f"{key}: true or false, not {value!r}")

    def choice(self, key: str, allowed: Sequence[str], default: str) -> str:
        value = self.get(key) or default
        if value not in allowed:
            raise RedcapError(f"{key}: one of {', '.join(allowed)}, not {value!r}")
        return value

    def moment(self, key: str) -> dt.datetime | None:
        """A REDCap time, ``YYYY-MM-DD HH:MM[:SS]``, read as UTC (the server's clock); one with an offset as given."""
        text = self.get(key)
        if not text:
            return None
        late = text.endswith(" 24:00")  # REDCapR ends a day at 24:00: the next day's midnight
        try:
            at = dt.datetime.fromisoformat(text[: -len("24:00")] + "00:00" if late else text)
            at += dt.timedelta(days=1) if late else dt.timedelta(0)
        except ValueError:
            raise RedcapError(f"{key}: a date and time YYYY-MM-DD HH:MM:SS, not {text!r}") from None
        return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)

    @property
    def format(self) -> str:
        return self.choice("format", FORMATS, "xml")

    @property
    def error_format(self) -> str:
        """The format errors are answered in: ``returnFormat``, else ``format``, else JSON."""
        for key in ("returnFormat", "format"):
            if self.get(key) in FORMATS:
                return self.get(key)
        return "json"


def _xml(rows: Any) -> str:
    if isinstance(rows, Mapping):
        rows = [rows]
    items = "".join(
        "<item>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in row.items()) + "</item>" for row in rows
    )
    return f'<?xml version="1.0" encoding="UTF-8" ?><records>{items}</records>'


def _csv(rows: Any, columns: Sequence[str] | None = None) -> str:
    if isinstance(rows, Mapping):
        rows = [rows]
    out = io.StringIO()
    names = list(columns or (rows[0].keys() if rows else []))
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def answer(data: Any, fmt: str, columns: Sequence[str] | None = None) -> Response:
    """Rows (or one object) in the format asked for."""
    if fmt == "json":
        return JSONResponse(data)
    if fmt == "csv":
        return PlainTextResponse(_csv(data, columns), media_type="text/csv; charset=utf-8")
    return Response(_xml(data), media_type="application/xml")


def error(message: str, fmt: str, status: int) -> Response:
    """An error as REDCap writes it in this format."""
    if fmt == "csv":
        return PlainTextResponse(f"ERROR: {message}", status_code=status)
    if fmt == "xml":
        body = f'<?xml version="1.0" encoding="UTF-8" ?><hash><error>{escape(message)}</error></hash>'
        return Response(body, status_code=status, media_type="application/xml")
    return JSONResponse({"error": message}, status_code=status)


def rows_of(data: str, fmt: str) -> list[dict[str, Any]]:
    """Imported rows from the ``data`` parameter (JSON array or CSV with a header)."""
    if not data.strip():
        raise RedcapError("data: no data was sent")
    if fmt == "json":
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            raise RedcapError(f"data: not JSON ({exc.msg})") from None
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise RedcapError("data: a JSON array of objects")
        return parsed
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(data))
        rows = list(reader)
        if any(None in r for r in rows):
            raise RedcapError("data: a CSV row has more cells than the header")
        for number, r in enumerate(rows, start=1):
            if any(v is None for v in r.values()):  # a short row: its missing cells are not blanks to import
                cells = sum(v is not None for v in r.values())
                raise RedcapError(
                    f"data: CSV row {number} after the header has {cells} cells for the header's {len(r)} columns; "
                    "every row needs a cell for every column (an empty cell for a blank)"
                )
        return [dict(r) for r in rows]
    raise RedcapError("format: import data as json or csv (xml import is not supported)")
