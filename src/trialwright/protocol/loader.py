"""Reading a protocol file: YAML to a validated ``Protocol``, or every problem with its path and line.

The file is parsed with ruamel.yaml, which keeps each key's line, so a problem found by pydantic or by
the cross-checks is reported as ``FILE:LINE: arms[1].ratio: must be a whole number >= 1``. Unknown keys
are errors (a typo must not pass silently), with a suggestion when a known key is close.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import pickle
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from trialwright.protocol import base
from trialwright.protocol.checks import cross_check
from trialwright.protocol.declared import DERIVATION_TAGS
from trialwright.protocol.format1 import read_format_1
from trialwright.protocol.model import Protocol

__all__ = ["LoadedProtocol", "Problem", "ProtocolError", "load_protocol", "load_protocol_text"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a protocol file."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        """``FILE:LINE: path: message`` (the line omitted when unknown)."""
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ProtocolError(Exception):
    """A protocol file that cannot be used, with every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))


@dataclass(frozen=True)
class LoadedProtocol:
    """A validated protocol with the exact text it came from."""

    protocol: Protocol
    source_text: str
    sha256: str
    source: str


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read and validate a protocol file (FileNotFoundError if it does not exist)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(str(path), [Problem("", f"not UTF-8 text (byte {exc.start})")]) from None
    return load_protocol_text(text, source=str(path))


def load_protocol_text(text: str, source: str = "<string>", *, stored: bool = False) -> LoadedProtocol:
    """Validate protocol YAML given as text; ``stored``: a text read back from a trial database, which the rules
    added since it was stored must still read as its engine did (``ScreeningField.decimals``)."""
    parsed = _parsed(text)
    if isinstance(parsed, Problem):
        raise ProtocolError(source, [parsed])
    data, lines = pickle.loads(parsed)  # noqa: S301  # bytes this process pickled; a fresh copy to change
    if isinstance(data, dict):
        read_format_1(data)  # databases made before estimands keep the protocol text they ran under
    try:
        protocol = Protocol.model_validate(data, context={"stored": stored})
    except ValidationError as exc:
        raise ProtocolError(source, _problems(exc, data, lines)) from None
    found = cross_check(protocol, stored=stored)
    if found:
        raise ProtocolError(source, [Problem(path, message, _line_of(path, lines)) for path, message in found])
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedProtocol(protocol=protocol, source_text=text, sha256=digest, source=source)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> bytes | Problem:
    """The YAML of ``text`` as plain data and the line of every key and item (pickled, so each caller gets its own
    copy), or the problem that stops it being read. Parsing with line numbers is most of a load's time, and the
    same text is read again and again (each request's stored protocol, each test's trial): parsed once per text."""
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return Problem("", f"malformed YAML: {detail}", line)
    except YAMLError as exc:
        return Problem("", f"malformed YAML: {exc}")
    if not isinstance(document, CommentedMap):
        return Problem("", "a protocol file must be a YAML mapping of sections", 1)
    lines: dict[tuple[str | int, ...], int] = {}
    data = _plain(document, (), lines)
    return pickle.dumps((data, lines), protocol=pickle.HIGHEST_PROTOCOL)


def _plain(node: Any, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> Any:
    """Plain dicts and lists from ruamel's nodes, recording the line of every key and item."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            try:
                lines[(*path, str(key))] = node.lc.key(key)[0] + 1
            except KeyError:  # a key brought in by a YAML merge (<<): point at the mapping
                lines[(*path, str(key))] = node.lc.line + 1
            out[str(key)] = _plain(value, (*path, str(key)), lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            lines[(*path, i)] = node.lc.item(i)[0] + 1
            items.append(_plain(value, (*path, i), lines))
        return items
    if isinstance(node, str):
        return str(node)  # ruamel's scalar string types -> str
    return node


def _yaml_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """The error location as a path through the YAML, dropping pydantic's union and tag markers."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            if part in node:
                node = node[part]
                path.append(part)
            elif part == node.get("method") or part in DERIVATION_TAGS:
                continue  # the discriminator's tag, not a key of the file
            else:
                path.append(part)  # a missing key: name it
                node = None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        # anything else is a union member's name on a scalar: not part of the file's path
    return tuple(path)


def _format(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _line_of(path: str | tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    parts = _parse(path) if isinstance(path, str) else path
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return 1 if lines else None  # a missing top-level section: the file as a whole


def _parse(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for chunk in path.replace("]", "").split("."):
        name, *indexes = chunk.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes)
    return tuple(parts)


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    """The protocol models an annotation holds (through lists, optionals, unions and ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is dict:
        return []  # a mapping's keys are the author's, not a model's fields
    return [m for arg in typing.get_args(annotation) for m in _model_types(arg)]


def _keys_at(path: tuple[str | int, ...]) -> set[str]:
    """The keys the section at ``path`` (a data path) takes: the fields of the protocol models found there by walking
    the model from ``Protocol``; empty when the walk cannot tell (a mapping of the author's keys)."""
    models: list[type[BaseModel]] = [Protocol]
    for part in path:
        if isinstance(part, int):
            continue  # a list's item: the annotation already named its model
        found: list[type[BaseModel]] = []
        for model in models:
            for name, info in model.model_fields.items():
                if part in (name, info.alias):
                    found.extend(_model_types(info.annotation))
        models = found
    return {info.alias or name for model in models for name, info in model.model_fields.items()}


def _vocabulary() -> set[str]:
    names: set[str] = set()
    stack: list[type[BaseModel]] = [base.ProtocolModel]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for name, info in cls.model_fields.items():
            names.add(info.alias or name)
    return names


def _problems(exc: ValidationError, data: Any, lines: dict[tuple[str | int, ...], int]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors():
        path = _yaml_path(tuple(error["loc"]), data)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(path[-1]) if path else "?"
            here = _keys_at(path[:-1])  # the keys the section holding it takes (empty: not known)
            close = difflib.get_close_matches(key, (here or _vocabulary()) - {key}, n=1, cutoff=0.6 if here else 0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            message = f"unknown key {key!r}{' here' if here and key in _vocabulary() else ''}{hint}"
        elif kind == "missing":
            message = "is required but missing"
        elif error.get("input", ...) is None and kind in {"list_type", "dict_type", "model_type", "string_type"}:
            # A key written with nothing after it (``intercurrent_events:``) reads as null in YAML.
            wanted = {"list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping"}.get(kind, "a text")
            message = f"is empty (the key has no value): write {wanted} after it, or leave the key out"
        elif kind == "model_type" and isinstance(error.get("input"), str) and error.get("ctx", {}).get(
            "class_name"
        ) == "Choice":
            # A bare code where a form field's {code, label} goes (screening fields take bare codes: design.py).
            message = (
                f"a form field's choice is {{code, label}}: write - {{code: {error['input']}, label: ...}} (the label "
                "is what staff see on the form; only a screening field's choices may be bare codes)"
            )
        else:
            message = error["msg"].removeprefix("Value error, ")
            if kind not in {"value_error", "assertion_error"} and "input" in error:
                shown = repr(error["input"])
                message += f" (got {shown[:60]})" if not isinstance(error["input"], dict | list) else ""
        rendered = _format(path)
        if (rendered, message) in seen:
            continue
        seen.add((rendered, message))
        problems.append(Problem(rendered, message, _line_of(path, lines)))
    return problems
