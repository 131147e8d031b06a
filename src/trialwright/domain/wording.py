"""Messages in the words on the page: a field named by its label, not its id.

The services refuse a value with a machine-readable message, ``field: rule`` (``crp: must be a number``), which the
API and the command line keep, because scripts read the field id. A person reads the same message with each
reference to the protocol said in words: the field's label in the page's language when the protocol gives one
(``translations``), else its label.

``field_words`` says one reference: a field of the form in hand (``crp``), ``form.field`` (``labs.crp``, with the
form's name when it is another form than the one in hand), ``screening.field`` or a screening field. ``in_words``
renders a message: the references before its first ``": "`` (one, or several separated by commas, each said when
known) and, inside the rule, every reference written as an identifier (``form.field``, or an id holding an
underscore, such as ``started_at``), each when it names something known; anything it does not know is left as
written, never guessed.
``criterion_words`` says an eligibility criterion in its wording; ``check_words`` a data check's rule (what the
check expects of the fields it reads), for the text of the query a failed check raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from trialwright.protocol import Criterion, Protocol
from trialwright.protocol.forms import DataCheck

__all__ = ["OPERATORS", "Words", "check_words", "criterion_words", "field_words", "in_words", "words_for"]

#: What says a reference in words, or None when it names nothing known.
Words = Callable[[str], str | None]

# An identifier as the messages write a reference: ``labs.crp``, ``screening.age``, ``started_at``.
_IDENTIFIER = re.compile(r"(?<![\w.'\"/-])([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)(?![\w'\"/-]|\.\w)")


def _said(item: object, lang: str, default: str) -> str:
    translations: Mapping[str, str] = getattr(item, "translations", {}) or {}
    return translations.get(lang) or default


def field_words(protocol: Protocol, ref: str, lang: str = "en", *, form_id: str | None = None) -> str | None:
    """A field reference in words, in ``lang`` when the protocol translates its label; None when ``ref`` names no
    field. ``form_id`` is the form in hand: its fields may be named bare, and a field of another form is said with
    that form's name (``Weight (Vital signs)``)."""
    form_part, dot, name = ref.partition(".")
    if not dot:
        if form_id is not None:
            return field_words(protocol, f"{form_id}.{ref}", lang, form_id=form_id)
        form_part, name = "screening", ref
    if form_part == "screening":
        found = next((f for f in protocol.eligibility.screening_fields if f.id == name), None)
        return None if found is None else _said(found, lang, found.label)
    form = next((f for f in (*protocol.forms, *protocol.logs) if f.id == form_part), None)  # a form or a log
    field = None if form is None else next((f for f in form.fields if f.id == name), None)
    if form is None or field is None:
        return None
    label = _said(field, lang, field.label)
    return label if form_part == form_id else f"{label} ({_said(form, lang, form.name)})"


def criterion_words(criterion: Criterion, lang: str = "en") -> str:
    """An eligibility criterion in its wording, in ``lang`` when the protocol translates it."""
    return _said(criterion, lang, criterion.text)


_OPERATORS = {"lt": "is less than", "le": "is at most", "gt": "is more than", "ge": "is at least", "eq": "equals",
              "ne": "differs from", "in_window": "within the visit window"}  # fmt: skip

#: The words of each comparison (and of a window check), in English; a page passes its own to ``check_words``.
OPERATORS: Mapping[str, str] = _OPERATORS


def check_words(
    protocol: Protocol,
    check: DataCheck,
    lang: str = "en",
    operators: Mapping[str, str] = _OPERATORS,
    number: Callable[[str], str] = str,
) -> str:
    """What a data check expects, in words (English by default: the text of the query it raises is stored once, for
    every reader): ``CD4 (%) + CD8 (%) is at most CD3 (%) + 5``, ``Time of sampling within the visit window``.
    Fields of the first field's form are said by their labels, others with their form's name. A page says it in
    ``lang`` (the labels the protocol translates, the page's ``operators`` and ``number`` for its digits)."""
    refs = [*check.left, *check.right, *([check.field] if check.field else [])]
    home = refs[0].partition(".")[0]

    def said(ref: str) -> str:
        return field_words(protocol, ref, lang, form_id=home) or ref

    if check.kind == "in_window":
        return f"{said(refs[0])} {operators['in_window']}"
    assert check.op is not None  # a compare check always has one (protocol model)
    plus = f" + {number(f'{check.tolerance:g}')}" if check.tolerance else ""
    right = " + ".join(said(r) for r in check.right) + plus
    return f"{' + '.join(said(r) for r in check.left)} {operators[check.op]} {right}"


def words_for(
    protocol: Protocol, lang: str = "en", *, form_id: str | None = None, inputs: Mapping[str, str] | None = None
) -> Words:
    """What says each reference a page's messages may hold: the protocol's fields (``field_words``), then the
    page's own inputs (``inputs``: name -> the words its label shows, already in ``lang``)."""
    others = dict(inputs or {})

    def words(ref: str) -> str | None:
        return field_words(protocol, ref, lang, form_id=form_id) or others.get(ref)

    return words


def in_words(message: str, words: Words) -> str:
    """``message`` with its references in words (see the module docstring): ``crp: must be a number`` reads
    ``C-reactive protein: must be a number``."""
    head, colon, rule = message.partition(": ")
    if colon:
        names = [n.strip() for n in head.split(",")]
        head = ", ".join(words(n) or _body(n, words) for n in names)
        return f"{head}: {_body(rule, words)}"
    return _body(message, words)


def _body(text: str, words: Words) -> str:
    def one(match: re.Match[str]) -> str:
        ref = match.group(1)
        if "." not in ref and "_" not in ref:
            return ref  # a plain word of the sentence, even when a field bears the same id
        return words(ref) or ref

    return _IDENTIFIER.sub(one, text)
