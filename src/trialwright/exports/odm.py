"""CDISC ODM 1.3.2: the protocol's metadata and every participant's visits, forms and values in one XML file.

``OdmExporter`` writes ``<trial id>.odm.xml``, a Snapshot file: ``Study`` (``GlobalVariables`` from the
registry record, ``BasicDefinitions`` with the units, one ``MetaDataVersion`` per protocol version, OID
``MDV.<version>``), ``AdminData`` (the users named by the audit records, one ``Location`` per site, the
investigator's ``SignatureDef``) and ``ClinicalData``: a ``SubjectData`` per participant (``SubjectKey`` the
participant id, ``SiteRef`` the site), a ``StudyEventData`` per visit held or missed, a ``FormData`` with one
``ItemGroupData`` per form record and an ``ItemData`` per stored value. Each carries an ``AuditRecord``
(user, site, time, reason for change and ``SourceID`` ``audit:<seq>:<hash>``, the trialwright audit entry it
comes from) for the latest audit entry about it; a signed form carries its ``Signature``. The export source
has no stream of visits, so a visit without forms (a missed one) is found by its audit entry: ``visit.held``
or ``visit.missed``, or ``import.odm`` in a trial that was itself imported from ODM.

OIDs: ``SE.<visit>`` (and ``SE.UNSCHEDULED``, repeating, for unscheduled visits), ``F.<form>``,
``IG.<form>``, ``IT.<form>.<field>``, ``CL.<form>.<field>``, ``MT.<form>.<field>`` (the derivation of a
derived field), ``MU.<unit>``, ``USR.<username>``; a ``Location`` OID is the site code.

Values: ``Value`` holds the canonical value in ODM's format for the ``DataType`` (numbers in the canonical
unit, ``true``/``false``, dates and times with seconds, a multiple choice as its codes joined by commas, as
OpenClinica writes them). What plain ODM cannot hold goes into trialwright's vendor extension, namespace
``https://trialwright.dev/odm`` (prefix ``tw``), as extension *elements*, the last children of the element
they qualify, where ODM 1.3.2's ``...ElementExtension`` groups admit them (``extension_schema`` writes the
XSD that redefines those groups, the way Define-XML extends ODM):

* ``tw:StoredValue`` in ``ItemData``: ``Status`` (not_done, not_applicable, below_lloq, above_uloq,
  derived), ``Reason``, ``Unit`` (the unit as entered), and as JSON ``Entered`` (the value as typed),
  ``Limit`` (the LLOQ or ULOQ in the canonical unit), ``Components`` (a derived score's parts) and, only
  when ``Value`` cannot carry the stored value exactly, ``Value``. A value that is not there (not done,
  censored, not computable) is ``IsNull="Yes"``, so plain ODM readers see a null, never a zero or a limit.
* ``tw:Form`` in ``FormData``: state, version, last change, verification, signature and lock.
* ``tw:Visit`` in ``StudyEventData``: the visit date, or why it was missed, and an unscheduled visit's label.
* ``tw:Enrolment`` in ``SubjectData``: screening number and date, enrolment time, who consented and when,
  randomization number, time and stratum (never the arm), withdrawals, and the screening values as JSON.

Elements rather than attributes because ODM tools skip extension elements they do not know, while a
foreign attribute on ``ItemData`` makes a strict ODM model (odmlib's, for one) refuse the whole file.
Every value is checked to come back exactly from what is written (``from_odm(to_odm(...))``) before it is
written, so an import rebuilds the stored JSON byte for byte.

Masking: ODM carries no arm (``carries_arms = False``): nothing here reads ``ParticipantRecord.arm``.
Memory stays flat: the XML is written as it goes, the audit trail is indexed once in a temporary SQLite
file, and only one participant's form records are held at a time. Adverse events are not in this file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, TextIO

import trialwright
from trialwright.domain.audit import AuditEntry
from trialwright.exports.base import Exporter, ExportSource, FormRecord, ParticipantRecord, Progress
from trialwright.protocol import FieldType, FormField, Protocol

__all__ = [
    "ODM_NS",
    "TW_NS",
    "UNSCHEDULED",
    "OdmExporter",
    "Outline",
    "extension_schema",
    "from_odm",
    "outline",
    "to_odm",
]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
TW_NS = "https://trialwright.dev/odm"
UNSCHEDULED = "SE.UNSCHEDULED"
SIGNATURE_DEF = "SD.investigator"

DATA_TYPES = {
    FieldType.INTEGER: "integer",
    FieldType.DECIMAL: "float",
    FieldType.TEXT: "text",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
    FieldType.TIME: "time",
    FieldType.CHOICE: "text",
    FieldType.MULTI_CHOICE: "text",
    FieldType.BOOLEAN: "boolean",
}


# --- OIDs and the metadata outline ------------------------------------------------------------------


def mdv_oid(version: str) -> str:
    """The MetaDataVersion OID of a protocol version."""
    return f"MDV.{version}"


def item_oid(form_id: str, field_id: str) -> str:
    """The ItemDef OID of a form's field."""
    return f"IT.{form_id}.{field_id}"


def user_oid(username: str) -> str:
    """The User OID of a trialwright user (or of trialwright itself, for derived values)."""
    return f"USR.{username}"


def unit_oids(protocol: Protocol) -> dict[str, str]:
    """Each canonical unit's MeasurementUnit OID, readable and unique."""
    oids: dict[str, str] = {}
    for form in protocol.forms:
        for f in form.fields:
            if f.unit and f.unit not in oids:
                readable = f.unit.replace("%", "percent").replace("°", "deg").replace("/", " per ")
                slug = re.sub(r"[^A-Za-z0-9]+", "_", readable).strip("_") or "unit"
                oid, n = f"MU.{slug}", 1
                while oid in oids.values():
                    n += 1
                    oid = f"MU.{slug}_{n}"
                oids[f.unit] = oid
    return oids


@dataclass(frozen=True)
class Outline:
    """The metadata's structure by OID: what the export writes and what an import must find again."""

    events: Mapping[str, tuple[str, ...]]  # StudyEventDef -> FormRef OIDs
    forms: Mapping[str, tuple[str, ...]]  # FormDef -> ItemGroupRef OIDs
    groups: Mapping[str, tuple[str, ...]]  # ItemGroupDef -> ItemRef OIDs
    items: Mapping[str, tuple[str, str | None]]  # ItemDef -> (DataType, CodeListRef)
    codelists: Mapping[str, tuple[str, ...]]  # CodeList -> coded values
    visits: Mapping[str, str]  # StudyEventDef -> protocol visit id ("" for SE.UNSCHEDULED)
    fields: Mapping[str, tuple[str, FormField]]  # ItemDef -> (form id, field)


def outline(protocol: Protocol) -> Outline:
    """The metadata outline of a protocol."""
    items: dict[str, tuple[str, str | None]] = {}
    codelists: dict[str, tuple[str, ...]] = {}
    fields: dict[str, tuple[str, FormField]] = {}
    for form in protocol.forms:
        for f in form.fields:
            oid = item_oid(form.id, f.id)
            codelist = f"CL.{form.id}.{f.id}" if f.choices else None
            items[oid] = (DATA_TYPES[f.type], codelist)
            fields[oid] = (form.id, f)
            if codelist:
                codelists[codelist] = tuple(c.code for c in f.choices)
    events = {f"SE.{v.id}": tuple(f"F.{form}" for form in v.forms) for v in protocol.visits}
    events[UNSCHEDULED] = tuple(f"F.{form.id}" for form in protocol.forms)
    visits = {f"SE.{v.id}": v.id for v in protocol.visits} | {UNSCHEDULED: ""}
    return Outline(
        events=events,
        forms={f"F.{form.id}": (f"IG.{form.id}",) for form in protocol.forms},
        groups={f"IG.{form.id}": tuple(item_oid(form.id, f.id) for f in form.fields) for form in protocol.forms},
        items=items,
        codelists=codelists,
        visits=visits,
        fields=fields,
    )


# --- values ----------------------------------------------------------------------------------------

_STORED_KEYS = ("value", "status", "entered", "unit", "reason", "limit", "components")
_TEXT_KEYS = ("status", "reason", "unit")
_JSON_KEYS = ("entered", "limit", "components")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def encode_value(kind: FieldType, value: Any) -> str:
    """A canonical value as ODM's ``Value`` text for the field's DataType."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else text + ".0"
    if isinstance(value, str) and kind is FieldType.DATETIME:
        try:
            return dt.datetime.fromisoformat(value).isoformat(timespec="seconds")
        except ValueError:
            return value
    if isinstance(value, str) and kind is FieldType.TIME:
        try:
            return dt.time.fromisoformat(value).isoformat(timespec="seconds")
        except ValueError:
            return value
    return str(value)


def decode_value(kind: FieldType, text: str) -> Any:
    """ODM ``Value`` text back to the canonical value (ValueError if it is not one)."""
    if kind in {FieldType.INTEGER, FieldType.DECIMAL}:
        number = int(text) if _WHOLE.fullmatch(text) else float(text)
        if kind is FieldType.INTEGER and not isinstance(number, int):
            raise ValueError(f"{text!r} is not an integer")
        return number
    if kind is FieldType.BOOLEAN:
        if text not in _BOOLEANS:
            raise ValueError(f"{text!r} is not a boolean (true or false)")
        return _BOOLEANS[text]
    if kind is FieldType.MULTI_CHOICE:
        return text.split(",") if text else []
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(text).isoformat()
    if kind is FieldType.DATETIME:
        return dt.datetime.fromisoformat(text).isoformat(timespec="minutes")
    if kind is FieldType.TIME:
        return dt.time.fromisoformat(text).isoformat(timespec="minutes")
    return text


def to_odm(f: FormField, stored: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """A stored value as ODM: the ``Value`` text (None: ``IsNull="Yes"``) and the ``tw:StoredValue``
    attributes that keep the rest; ValueError if the stored value cannot come back exactly."""
    unknown = sorted(set(stored) - set(_STORED_KEYS))
    if unknown:
        raise ValueError(f"{f.id}: stored keys {', '.join(unknown)} have no place in ODM")
    detail: dict[str, str] = {}
    text: str | None = None
    if stored.get("value") is not None:
        value = stored["value"]
        text = encode_value(f.type, value)
        try:
            exact = _json(decode_value(f.type, text)) == _json(value)
        except ValueError:
            exact = False
        if not exact or _XML_UNSAFE.search(text):
            detail["Value"] = _json(value)
            text = detail["Value"] if _XML_UNSAFE.search(text) else text
    for key in _TEXT_KEYS:
        if key in stored and not (key == "status" and stored[key] == "value"):
            if not isinstance(stored[key], str):
                raise ValueError(f"{f.id}: {key} {stored[key]!r} is not text")
            detail[key.capitalize()] = stored[key]
    for key in _JSON_KEYS:
        if key in stored:
            detail[key.capitalize()] = _json(stored[key])
    if _json(from_odm(f, text, detail)) != _json(dict(stored)):
        raise ValueError(f"{f.id}: the stored value {_json(dict(stored))} would not come back exactly from ODM")
    return text, detail


def from_odm(f: FormField, text: str | None, detail: Mapping[str, str]) -> dict[str, Any]:
    """The stored value (as JSON) from ODM's ``Value`` and the ``tw:StoredValue`` attributes."""
    stored: dict[str, Any] = {}
    if "Value" in detail:
        stored["value"] = json.loads(detail["Value"])
    elif text is not None:
        stored["value"] = decode_value(f.type, text)
    stored["status"] = detail.get("Status", "value")
    for key in ("reason", "unit"):
        if key.capitalize() in detail:
            stored[key] = detail[key.capitalize()]
    for key in _JSON_KEYS:
        if key.capitalize() in detail:
            stored[key] = json.loads(detail[key.capitalize()])
    return stored


# --- streaming XML ---------------------------------------------------------------------------------


def _safe(text: str) -> str:
    if _XML_UNSAFE.search(text):
        raise ValueError(f"{text[:60]!r} holds a character XML 1.0 cannot carry")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _quote(text: str) -> str:
    return '"' + _safe(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;") + '"'


class _Xml:
    """An indenting XML writer that never holds more than the open elements' names."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._depth = 0

    def declaration(self) -> None:
        self._out.write('<?xml version="1.0" encoding="UTF-8"?>\n')

    def _start(self, tag: str, attrs: Mapping[str, str | None] | None) -> str:
        pairs = "".join(f" {k}={_quote(v)}" for k, v in (attrs or {}).items() if v is not None)
        return f"{'  ' * self._depth}<{tag}{pairs}"

    @contextmanager
    def element(self, tag: str, attrs: Mapping[str, str | None] | None = None) -> Iterator[None]:
        self._out.write(self._start(tag, attrs) + ">\n")
        self._depth += 1
        yield
        self._depth -= 1
        self._out.write(f"{'  ' * self._depth}</{tag}>\n")

    def leaf(self, tag: str, attrs: Mapping[str, str | None] | None = None, text: str | None = None) -> None:
        start = self._start(tag, attrs)
        self._out.write(f"{start}/>\n" if text is None else f"{start}>{_safe(text)}</{tag}>\n")

    def translated(self, tag: str, text: str, translations: Mapping[str, str] | None = None) -> None:
        with self.element(tag):
            self.leaf("TranslatedText", {"xml:lang": "en"}, text)
            for lang, other in (translations or {}).items():
                self.leaf("TranslatedText", {"xml:lang": lang}, other)


def _iso(moment: dt.datetime | dt.date | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- the audit index -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Audited:
    seq: int
    at: str
    actor: str
    role: str | None
    site: str | None
    reason: str | None
    hash: str
    action: str
    extra: str | None  # visits: {"date", "label", "missed"} as JSON; locks: the state before the lock


_COLUMNS = "seq, at, actor, role, site, reason, hash, action, extra"
_TABLES = {"subject": 1, "visit": 2, "form": 3, "lock": 3, "item": 4}  # table -> key columns
_VALUE_ACTIONS = {"form.value_entered", "form.value_changed", "form.value_derived"}
_EDIT_POINTS = {"monitor": "Monitoring", "data_manager": "DataManagement"}


class _AuditIndex:
    """The latest audit entry about each participant, visit, form and item, in a temporary SQLite file.

    The audit stream comes oldest first, in no participant order; indexing it once (on disk, not in
    memory) lets each element find its entry while the data are written in participant order.
    """

    def __init__(self, path: Path, entries: Iterable[AuditEntry]) -> None:
        self.db = sqlite3.connect(path)
        for table, keys in _TABLES.items():
            names = ", ".join(f"k{i}" for i in range(keys))
            self.db.execute(f"CREATE TABLE {table} ({names}, {_COLUMNS}, PRIMARY KEY ({names}))")
        self.users: dict[str, str | None] = {}
        pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TABLES}
        for n, e in enumerate(entries):
            for table, key, extra, who in self._keys(e):
                actor, at = who or (e.actor, e.at.isoformat())
                pending[table].append((*key, e.seq, at, actor, e.role, e.site, e.reason, e.hash, e.action, extra))
                self.users[e.actor] = e.role or self.users.get(e.actor)
            if n % 5000 == 4999:
                self._flush(pending)
        self._flush(pending)

    @staticmethod
    def _keys(e: AuditEntry) -> Iterator[tuple[str, tuple[str, ...], str | None, tuple[str, str] | None]]:
        """Where an entry is indexed: table, key, extra, and who and when if not the entry's own actor and time
        (a lock restored by an ODM import keeps who locked the form and when)."""
        if e.participant is None:
            return
        if e.action == "participant.enrolled":
            yield "subject", (e.participant,), None, None
            return
        detail = json.loads(e.detail) if e.detail else {}
        visit = detail.get("visit") if isinstance(detail, dict) else None
        if not isinstance(visit, str):
            return
        if e.action in {"visit.held", "visit.missed"} or (e.action == "import.odm" and not e.form):
            new = json.loads(e.new_value) if e.new_value else None
            day, label = (new.get("visit_date"), new.get("label")) if isinstance(new, dict) else (new, None)
            missed = e.action == "visit.missed" or (e.action == "import.odm" and day is None)
            held = {"date": day, "label": label or detail.get("label"), "missed": missed}
            yield "visit", (e.participant, visit), _json(held), None
        elif (e.action.startswith("form.") or e.action == "import.odm") and e.form:
            key = (e.participant, visit, e.form)
            yield "form", key, None, None
            if e.action == "form.locked":
                yield "lock", key, json.loads(e.old_value) if e.old_value else None, None
            if e.action in _VALUE_ACTIONS and e.field:
                yield "item", (*key, e.field), None, None
            lock = json.loads(e.new_value or "{}").get("lock") if e.action == "import.odm" else None
            if isinstance(lock, dict) and lock.get("by") and lock.get("at"):
                yield "lock", key, lock.get("before"), (str(lock.get("by")), str(lock.get("at")))

    def _flush(self, pending: dict[str, list[tuple[Any, ...]]]) -> None:
        for table, rows in pending.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                self.db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", rows)  # noqa: S608 - table names are ours
                rows.clear()

    def one(self, table: str, *key: str) -> _Audited | None:
        where = " AND ".join(f"k{i} = ?" for i in range(len(key)))
        row = self.db.execute(f"SELECT {_COLUMNS} FROM {table} WHERE {where}", key).fetchone()  # noqa: S608
        return None if row is None else _Audited(*row)

    def visits(self, participant: str) -> dict[str, _Audited]:
        rows = self.db.execute(f"SELECT k1, {_COLUMNS} FROM visit WHERE k0 = ?", (participant,))  # noqa: S608
        return {r[0]: _Audited(*r[1:]) for r in rows}

    def items(self, participant: str, visit: str, form: str) -> dict[str, _Audited]:
        rows = self.db.execute(
            f"SELECT k3, {_COLUMNS} FROM item WHERE k0 = ? AND k1 = ? AND k2 = ?",  # noqa: S608
            (participant, visit, form),
        )
        return {r[0]: _Audited(*r[1:]) for r in rows}


# --- the document ----------------------------------------------------------------------------------


@dataclass
class _Visit:
    visit_id: str
    date: dt.date | None = None
    missed: str | None = None
    label: str | None = None
    audited: _Audited | None = None


class _Document:
    """One ODM file being written, element by element."""

    def __init__(self, source: ExportSource, index: _AuditIndex, xml: _Xml, progress: Progress | None) -> None:
        self.source, self.index, self.xml, self.progress = source, index, xml, progress
        self.protocol = source.protocol
        self.outline = outline(source.protocol)
        self.units = unit_oids(source.protocol)
        self.order = {v.id: i for i, v in enumerate(self.protocol.visits)}
        self.sites = set(self.protocol.site_codes)
        self.written = 0

    def write(self) -> None:
        p, src = self.protocol, self.source
        self.xml.declaration()
        root = {
            "xmlns": ODM_NS,
            "xmlns:tw": TW_NS,
            "FileType": "Snapshot",
            "FileOID": f"{src.trial_id}.{src.taken_at.astimezone(dt.UTC):%Y%m%dT%H%M%S}Z",
            "CreationDateTime": src.taken_at.isoformat(),
            "AsOfDateTime": src.taken_at.isoformat(),
            "ODMVersion": "1.3.2",
            "Originator": "trialwright",
            "SourceSystem": "trialwright",
            "SourceSystemVersion": trialwright.__version__,
        }
        with self.xml.element("ODM", root):
            with self.xml.element("Study", {"OID": src.trial_id}):
                with self.xml.element("GlobalVariables"):
                    self.xml.leaf("StudyName", text=p.short_name)
                    self.xml.leaf("StudyDescription", text=p.trial.titles.scientific)
                    self.xml.leaf("ProtocolName", text=src.trial_id)
                if self.units:
                    with self.xml.element("BasicDefinitions"):
                        for unit, oid in self.units.items():
                            with self.xml.element("MeasurementUnit", {"OID": oid, "Name": unit}):
                                self.xml.translated("Symbol", unit)
                self._metadata()
            self._admin()
            self._clinical()

    # --- metadata ---

    def _metadata(self) -> None:
        p, xml = self.protocol, self.xml
        attrs = {"OID": mdv_oid(self.source.protocol_version), "Name": f"{p.trial_id} protocol {p.version.number}",
                 "Description": f"Protocol version {p.version.number} of {p.version.date.isoformat()}"}  # fmt: skip
        with xml.element("MetaDataVersion", attrs):
            with xml.element("Protocol"):
                for n, oid in enumerate(self.outline.events, start=1):
                    xml.leaf("StudyEventRef", {"StudyEventOID": oid, "OrderNumber": str(n),
                                               "Mandatory": "No" if oid == UNSCHEDULED else "Yes"})  # fmt: skip
            for v in p.visits:
                with xml.element("StudyEventDef", {"OID": f"SE.{v.id}", "Name": v.name, "Repeating": "No",
                                                   "Type": "Scheduled"}):  # fmt: skip
                    where = f"day {v.day} from {v.reference} (window -{v.window.before}/+{v.window.after})"
                    xml.translated("Description", f"{v.kind} visit {v.id}: {where}", v.translations)
                    for n, fid in enumerate(v.forms, start=1):
                        xml.leaf("FormRef", {"FormOID": f"F.{fid}", "OrderNumber": str(n), "Mandatory": "Yes"})
            with xml.element("StudyEventDef", {"OID": UNSCHEDULED, "Name": "Unscheduled visit", "Repeating": "Yes",
                                               "Type": "Unscheduled"}):  # fmt: skip
                for n, form in enumerate(p.forms, start=1):
                    xml.leaf("FormRef", {"FormOID": f"F.{form.id}", "OrderNumber": str(n), "Mandatory": "No"})
            for form in p.forms:
                with xml.element("FormDef", {"OID": f"F.{form.id}", "Name": form.name, "Repeating": "No"}):
                    if form.description:
                        xml.translated("Description", form.description)
                    xml.leaf("ItemGroupRef", {"ItemGroupOID": f"IG.{form.id}", "Mandatory": "Yes"})
            for form in p.forms:
                with xml.element("ItemGroupDef", {"OID": f"IG.{form.id}", "Name": form.name, "Repeating": "No"}):
                    for n, f in enumerate(form.fields, start=1):
                        xml.leaf("ItemRef", {"ItemOID": item_oid(form.id, f.id), "OrderNumber": str(n),
                                             "Mandatory": "Yes" if f.required and f.derived is None else "No",
                                             "MethodOID": f"MT.{form.id}.{f.id}" if f.derived else None})  # fmt: skip
            for form in p.forms:
                for f in form.fields:
                    self._item_def(form.id, f)
            for form in p.forms:
                for f in (f for f in form.fields if f.choices):
                    with xml.element("CodeList", {"OID": f"CL.{form.id}.{f.id}", "Name": f"{form.id}.{f.id}",
                                                  "DataType": "text"}):  # fmt: skip
                        for n, c in enumerate(f.choices, start=1):
                            with xml.element("CodeListItem", {"CodedValue": c.code, "OrderNumber": str(n)}):
                                xml.translated("Decode", c.label, c.translations)
            for form in p.forms:
                for f in form.fields:
                    if f.derived is not None:
                        attrs = {"OID": f"MT.{form.id}.{f.id}", "Name": f.derived.name, "Type": "Computation"}
                        with xml.element("MethodDef", attrs):
                            xml.translated("Description", f"{f.derived.describe()}, computed by trialwright")

    def _item_def(self, form_id: str, f: FormField) -> None:
        xml = self.xml
        digits = str(f.decimals) if f.type is FieldType.DECIMAL and f.decimals else None
        attrs = {
            "OID": item_oid(form_id, f.id),
            "Name": f.id,
            "DataType": DATA_TYPES[f.type],
            "SignificantDigits": digits,
        }
        with xml.element("ItemDef", attrs):
            if f.help:
                xml.translated("Description", f.help)
            xml.translated("Question", f.label, f.translations)
            if f.unit:
                xml.leaf("MeasurementUnitRef", {"MeasurementUnitOID": self.units[f.unit]})
            for limits, kind in ((f.hard_limits, "Hard"), (f.soft_limits, "Soft")):
                if limits is None:
                    continue
                for bound, comparator in ((limits.min, "GE"), (limits.max, "LE")):
                    if bound is not None:
                        with xml.element("RangeCheck", {"Comparator": comparator, "SoftHard": kind}):
                            xml.leaf("CheckValue", text=_number(bound))
            if f.choices:
                xml.leaf("CodeListRef", {"CodeListOID": f"CL.{form_id}.{f.id}"})
            for context, name in _aliases(f):
                xml.leaf("Alias", {"Context": context, "Name": name})

    def _admin(self) -> None:
        xml, p = self.xml, self.protocol
        with xml.element("AdminData", {"StudyOID": self.source.trial_id}):
            for name, role in sorted(self.index.users.items()):
                kind = "Investigator" if role == "investigator" else "Other"
                with xml.element("User", {"OID": user_oid(name), "UserType": kind}):
                    xml.leaf("LoginName", text=name)
            for site in p.sites:
                with xml.element("Location", {"OID": site.code, "Name": site.name, "LocationType": "Site"}):
                    xml.leaf("MetaDataVersionRef", {"StudyOID": self.source.trial_id,
                                                    "MetaDataVersionOID": mdv_oid(self.source.protocol_version),
                                                    "EffectiveDate": p.version.date.isoformat()})  # fmt: skip
            with xml.element("SignatureDef", {"OID": SIGNATURE_DEF, "Methodology": "Electronic"}):
                xml.leaf("Meaning", text=p.signature_meaning)
                xml.leaf("LegalReason", text="21 CFR Part 11 electronic signature of the investigator")

    def _audit_record(self, a: _Audited | None, site: str) -> None:
        if a is None:
            return
        with self.xml.element("AuditRecord", {"EditPoint": _EDIT_POINTS.get(a.role or "")}):
            self.xml.leaf("UserRef", {"UserOID": user_oid(a.actor)})
            self.xml.leaf("LocationRef", {"LocationOID": a.site if a.site in self.sites else site})
            self.xml.leaf("DateTimeStamp", text=a.at)
            if a.reason:
                self.xml.leaf("ReasonForChange", text=a.reason)
            self.xml.leaf("SourceID", text=f"audit:{a.seq}:{a.hash}")

    # --- clinical data ---

    def _clinical(self) -> None:
        src = self.source
        participants = iter(src.participants())
        first = next(participants, None)  # read before the form stream opens (one reader at a time on SQLite)
        forms = iter(src.forms())
        pending = next(forms, None)
        attrs = {"StudyOID": src.trial_id, "MetaDataVersionOID": mdv_oid(src.protocol_version)}
        with self.xml.element("ClinicalData", attrs):
            for person in itertools.chain([first] if first else [], participants):
                records: list[FormRecord] = []
                while pending is not None and pending.participant_id == person.participant_id:
                    records.append(pending)
                    pending = next(forms, None)
                self._subject(person, records)
        if pending is not None:
            raise ValueError(f"participant: {pending.participant_id} has form records but no participant record")

    def _subject(self, person: ParticipantRecord, records: list[FormRecord]) -> None:
        xml, pid = self.xml, person.participant_id
        visits: dict[str, _Visit] = {}
        for vid, a in self.index.visits(pid).items():
            held = json.loads(a.extra or "{}")
            missed = a.reason if held.get("missed") else None
            day = dt.date.fromisoformat(held["date"]) if held.get("date") and not missed else None
            visits[vid] = _Visit(vid, day, missed, held.get("label"), a)
        for r in records:
            v = visits.setdefault(r.visit_id, _Visit(r.visit_id))
            v.date, v.missed = r.visit_date, r.visit_missed
        with xml.element("SubjectData", {"SubjectKey": pid}):
            self._audit_record(self.index.one("subject", pid), person.site)
            xml.leaf("SiteRef", {"LocationOID": person.site})
            for v in sorted(visits.values(), key=self._visit_order):
                self._visit(person, v, [r for r in records if r.visit_id == v.visit_id])
            self._enrolment(person)

    def _visit_order(self, v: _Visit) -> tuple[int, int, str]:
        number = v.visit_id.removeprefix("unscheduled-")
        return self.order.get(v.visit_id, len(self.order)), int(number) if number.isdigit() else 0, v.visit_id

    def _visit(self, person: ParticipantRecord, v: _Visit, records: list[FormRecord]) -> None:
        xml = self.xml
        if v.visit_id in self.order:
            attrs = {"StudyEventOID": f"SE.{v.visit_id}"}
        elif v.visit_id.startswith("unscheduled-") and v.visit_id.removeprefix("unscheduled-").isdigit():
            attrs = {"StudyEventOID": UNSCHEDULED, "StudyEventRepeatKey": v.visit_id.removeprefix("unscheduled-")}
        else:
            raise ValueError(f"visit: {person.participant_id} has visit {v.visit_id!r}, not a visit of the protocol")
        with xml.element("StudyEventData", attrs):
            self._audit_record(v.audited, person.site)
            for r in records:
                self._form(person, r)
            xml.leaf("tw:Visit", {"Date": _iso(v.date), "MissedReason": v.missed, "Label": v.label})

    def _form(self, person: ParticipantRecord, r: FormRecord) -> None:
        xml, form = self.xml, self.protocol.form(r.form_id)
        with xml.element("FormData", {"FormOID": f"F.{r.form_id}"}):
            self._audit_record(self.index.one("form", r.participant_id, r.visit_id, r.form_id), r.site)
            if r.signed_by and r.signed_at and r.signed_by in self.index.users:
                with xml.element("Signature", {"ID": f"SIG.{r.participant_id}.{r.visit_id}.{r.form_id}"}):
                    xml.leaf("UserRef", {"UserOID": user_oid(r.signed_by)})
                    xml.leaf("LocationRef", {"LocationOID": r.site})
                    xml.leaf("SignatureRef", {"SignatureOID": SIGNATURE_DEF})
                    xml.leaf("DateTimeStamp", text=r.signed_at.isoformat())
            audited = self.index.items(r.participant_id, r.visit_id, r.form_id)
            known = {f.id for f in form.fields}
            strays = sorted(set(r.values) - known)
            if strays:
                raise ValueError(f"{r.participant_id} {r.visit_id} {r.form_id}: fields {', '.join(strays)} are not "
                                 f"in protocol version {self.source.protocol_version}")  # fmt: skip
            with xml.element("ItemGroupData", {"ItemGroupOID": f"IG.{r.form_id}"}):
                for f in form.fields:
                    if f.id in r.values:
                        self._item(r, f, r.values[f.id], audited.get(f.id))
            locked = self.index.one("lock", r.participant_id, r.visit_id, r.form_id) if r.state == "locked" else None
            xml.leaf("tw:Form", {
                "State": r.state, "Version": str(r.version), "UpdatedAt": r.updated_at.isoformat(),
                "UpdatedBy": r.updated_by, "VerifiedBy": r.verified_by, "VerifiedAt": _iso(r.verified_at),
                "SignedBy": r.signed_by, "SignedAt": _iso(r.signed_at),
                "LockedBy": locked.actor if locked else None, "LockedAt": locked.at if locked else None,
                "StateBeforeLock": locked.extra if locked else None,
            })  # fmt: skip
        self.written += 1
        if self.progress is not None:
            self.progress(self.written)

    def _item(self, r: FormRecord, f: FormField, stored: Mapping[str, Any], audited: _Audited | None) -> None:
        text, detail = to_odm(f, stored)
        attrs = {"ItemOID": item_oid(r.form_id, f.id), "Value": text, "IsNull": "Yes" if text is None else None}
        if audited is None and not detail and not (f.unit and text is not None):
            self.xml.leaf("ItemData", attrs)
            return
        with self.xml.element("ItemData", attrs):
            self._audit_record(audited, r.site)
            if f.unit and text is not None:
                self.xml.leaf("MeasurementUnitRef", {"MeasurementUnitOID": self.units[f.unit]})
            if detail:
                self.xml.leaf("tw:StoredValue", detail)

    def _enrolment(self, p: ParticipantRecord) -> None:
        attrs = {
            "ScreeningNumber": p.screening_number, "ScreenedOn": p.screened_on.isoformat(),
            "EnrolledAt": p.enrolled_at.isoformat(), "ConsentGivenBy": p.consent_given_by,
            "ConsentedAt": _iso(p.consented_at),
            "RandomizationNumber": None if p.randomization_number is None else str(p.randomization_number),
            "RandomizedAt": _iso(p.randomized_at), "Stratum": p.stratum,
        }  # fmt: skip
        with self.xml.element("tw:Enrolment", attrs):
            self.xml.leaf("tw:ScreeningValues", text=_json(dict(p.screening_values)))
            for scope, on, reason, cause in p.withdrawals:
                attrs = {"Scope": scope, "On": on.isoformat(), "Reason": reason}
                self.xml.leaf("tw:Withdrawal", attrs if cause is None else {**attrs, "Cause": cause})


class OdmExporter(Exporter):
    """CDISC ODM 1.3.2, Snapshot: metadata from the protocol, clinical data with audit records; no arms."""

    name: ClassVar[str] = "odm"
    description: ClassVar[str] = (
        "CDISC ODM 1.3.2 XML: the protocol's metadata and every participant's visits, forms and values, "
        "with audit records (never the arm)"
    )
    carries_arms: ClassVar[bool] = False

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        path = folder / f"{source.trial_id}.odm.xml"
        with tempfile.TemporaryDirectory(prefix="trialwright-odm-") as tmp:
            index = _AuditIndex(Path(tmp) / "audit.sqlite", source.audit())
            try:
                with path.open("w", encoding="utf-8", newline="\n") as out:
                    _Document(source, index, _Xml(out), progress).write()
            finally:
                index.db.close()
        return [path]


# --- the vendor extension's schema ------------------------------------------------------------------

_TW_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- trialwright's vendor extension to CDISC ODM 1.3.2: the elements (see trialwright.exports.odm). -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{tw}" xmlns:tw="{tw}"
           elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:simpleType name="status">
    <xs:restriction base="xs:string">
      <xs:enumeration value="not_done"/><xs:enumeration value="not_applicable"/>
      <xs:enumeration value="below_lloq"/><xs:enumeration value="above_uloq"/><xs:enumeration value="derived"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="state">
    <xs:restriction base="xs:string">
      <xs:enumeration value="draft"/><xs:enumeration value="complete"/><xs:enumeration value="verified"/>
      <xs:enumeration value="signed"/><xs:enumeration value="locked"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:element name="StoredValue">
    <xs:complexType>
      <xs:attribute name="Status" type="tw:status"/>
      <xs:attribute name="Reason" type="xs:string"/>
      <xs:attribute name="Unit" type="xs:string"/>
      <xs:attribute name="Entered" type="xs:string"/>
      <xs:attribute name="Limit" type="xs:string"/>
      <xs:attribute name="Components" type="xs:string"/>
      <xs:attribute name="Value" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Form">
    <xs:complexType>
      <xs:attribute name="State" type="tw:state" use="required"/>
      <xs:attribute name="Version" type="xs:positiveInteger" use="required"/>
      <xs:attribute name="UpdatedAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="UpdatedBy" type="xs:string" use="required"/>
      <xs:attribute name="VerifiedBy" type="xs:string"/>
      <xs:attribute name="VerifiedAt" type="xs:dateTime"/>
      <xs:attribute name="SignedBy" type="xs:string"/>
      <xs:attribute name="SignedAt" type="xs:dateTime"/>
      <xs:attribute name="LockedBy" type="xs:string"/>
      <xs:attribute name="LockedAt" type="xs:dateTime"/>
      <xs:attribute name="StateBeforeLock" type="tw:state"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Visit">
    <xs:complexType>
      <xs:attribute name="Date" type="xs:date"/>
      <xs:attribute name="MissedReason" type="xs:string"/>
      <xs:attribute name="Label" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Enrolment">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="ScreeningValues" type="xs:string"/>
        <xs:element name="Withdrawal" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:attribute name="Scope" type="xs:string" use="required"/>
            <xs:attribute name="On" type="xs:date" use="required"/>
            <xs:attribute name="Reason" type="xs:string" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="ScreeningNumber" type="xs:string" use="required"/>
      <xs:attribute name="ScreenedOn" type="xs:date" use="required"/>
      <xs:attribute name="EnrolledAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="ConsentGivenBy" type="xs:string"/>
      <xs:attribute name="ConsentedAt" type="xs:dateTime"/>
      <xs:attribute name="RandomizationNumber" type="xs:positiveInteger"/>
      <xs:attribute name="RandomizedAt" type="xs:dateTime"/>
      <xs:attribute name="Stratum" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

_ODM_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- CDISC ODM 1.3.2 with trialwright's vendor extension, redefined the way Define-XML extends ODM. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{odm}" xmlns="{odm}" xmlns:tw="{tw}"
           elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="{odm_dir}/xml.xsd"/>
  <xs:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="{odm_dir}/xmldsig-core-schema.xsd"/>
  <xs:import namespace="{tw}" schemaLocation="trialwright-odm-ns.xsd"/>
  <xs:redefine schemaLocation="{odm_dir}/ODM1-3-2-foundation.xsd">
{groups}
  </xs:redefine>
</xs:schema>
"""

_EXTENDED = {"SubjectData": "Enrolment", "StudyEventData": "Visit", "FormData": "Form", "ItemData": "StoredValue"}


def extension_schema(folder: Path, odm_schema_dir: Path) -> Path:
    """Write the XSD of ODM 1.3.2 with trialwright's extension into ``folder``; returns the file to validate with.

    ``odm_schema_dir`` holds CDISC's ODM 1.3.2 schema (``ODM1-3-2-foundation.xsd``, ``xml.xsd``,
    ``xmldsig-core-schema.xsd``), e.g. the copy odmlib ships.
    """
    groups = "\n".join(
        f'    <xs:group name="{parent}ElementExtension"><xs:sequence>'
        f'<xs:group ref="{parent}ElementExtension"/><xs:element ref="tw:{element}" minOccurs="0"/>'
        f"</xs:sequence></xs:group>"
        for parent, element in _EXTENDED.items()
    )
    (folder / "trialwright-odm-ns.xsd").write_text(_TW_XSD.format(tw=TW_NS), encoding="utf-8")
    root = folder / "trialwright-odm1-3-2.xsd"
    odm_dir = odm_schema_dir.resolve().as_uri()
    root.write_text(_ODM_XSD.format(odm=ODM_NS, tw=TW_NS, odm_dir=odm_dir, groups=groups), encoding="utf-8")
    return root


def _aliases(f: FormField) -> list[tuple[str, str]]:
    """The field's declared standard codes as ODM Alias (Context, Name) pairs, in the protocol's order. ODM
    allows one Alias per Context in an element, so a second LOINC or SNOMED CT code is ``LOINC.2``, ``SNOMED-CT.2``."""
    codes = f.codes
    if codes is None:
        return []
    out = [("CDASH", codes.cdash)] if codes.cdash else []
    for context, listed in (("LOINC", [c.code for c in codes.loinc]), ("SNOMED-CT", [c.code for c in codes.snomed])):
        out += [(context if i == 0 else f"{context}.{i + 1}", code) for i, code in enumerate(listed)]
    out += [("UCUM", codes.ucum)] if codes.ucum else []
    out += [(f"SDTM {codes.sdtm.domain}TESTCD", codes.sdtm.testcd)] if codes.sdtm else []
    return out
