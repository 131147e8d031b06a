"""Coding adverse events to MedDRA: loading a release, searching its current LLTs, coding and recoding an event
along the LLT -> PT -> primary HLT/HLGT/SOC path, the coder's questions to the site, and what is left to code.

The coder (``Role.CODER``) codes; the coder is blinded like every role but those unblinded by their work, and
nothing here reads or returns an arm. A release is loaded by the coder or the data manager (``LOADERS``), whole
or not at all, after ``trialwright.domain.coding.read_meddra`` has checked every link. Coding uses the release
loaded last (``active_release``); each coding records its release, so a later release never changes what was
coded. An event whose reported term changed since it was coded (a follow-up) is *stale*: it is to code again,
and exports treat it as uncoded until it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, true
from sqlalchemy.orm import Session, aliased

from trialwright.domain.coding import MEDDRA_FILES, DictionaryError, check_version, read_meddra
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.services import audit, clock
from trialwright.services.errors import AccessDenied, FormError, denied
from trialwright.services.forms.common import QueryView
from trialwright.services.forms.queries import close_query, query_view, record_query
from trialwright.services.lock import require_unlocked
from trialwright.services.screening import NotFound
from trialwright.services.users import UserView
from trialwright.store.coding_tables import ae_codings, meddra_paths, meddra_releases, meddra_terms
from trialwright.store.data_tables import queries
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.safety_tables import adverse_events, ae_reports

__all__ = [
    "CODERS",
    "LOADERS",
    "Coding",
    "CodingError",
    "CodingItem",
    "LltMatch",
    "LltSearch",
    "ReleaseView",
    "active_release",
    "close_event_query",
    "code_event",
    "coding_item",
    "codings_by_event",
    "codings_of",
    "event_queries",
    "load_meddra",
    "query_event",
    "search_llts",
    "to_code",
]

#: Who codes adverse events and asks the site about them.
CODERS = (Role.CODER,)
#: Who loads a MedDRA release.
LOADERS = (Role.CODER, Role.DATA_MANAGER)

_BATCH = 5000
_LEVELS = ("llt", "pt", "hlt", "hlgt", "soc")


class CodingError(ValueError):
    """A coding request that breaks a rule; the message is ``field: rule`` (or ``file line N: rule``)."""


@dataclass(frozen=True)
class ReleaseView:
    """A loaded MedDRA release."""

    version: str
    loaded_at: dt.datetime
    loaded_by: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class LltMatch:
    """A current LLT found by a search, with its PT and primary SOC."""

    llt_code: int
    llt_name: str
    pt_code: int
    pt_name: str
    soc_name: str


@dataclass(frozen=True)
class LltSearch:
    """A search of the current LLTs: the first ``len(matches)`` of ``total`` matches (best first); ``cut`` says that
    more matched than are shown, so the coder narrows the search instead of missing a term."""

    text: str
    matches: tuple[LltMatch, ...]
    total: int

    @property
    def cut(self) -> bool:
        return self.total > len(self.matches)


@dataclass(frozen=True)
class Coding:
    """An event's coding: the release, the verbatim term it coded, and the LLT's primary path."""

    dictionary: str
    version: str
    verbatim: str
    llt_code: int
    llt_name: str
    pt_code: int
    pt_name: str
    hlt_code: int
    hlt_name: str
    hlgt_code: int
    hlgt_name: str
    soc_code: int
    soc_name: str
    coded_at: dt.datetime
    coded_by: str

    def as_audit(self) -> dict[str, Any]:
        """What the audit trail records of it."""
        return {
            "dictionary": self.dictionary,
            "version": self.version,
            "verbatim": self.verbatim,
            **{f"{level}_{what}": getattr(self, f"{level}_{what}") for level in _LEVELS for what in ("code", "name")},
        }


@dataclass(frozen=True)
class CodingItem:
    """An adverse event as the coder sees it: its number, participant, site, reported term and coding (no arm)."""

    ae_number: str
    participant_id: str
    site: str
    term: str
    coding: Coding | None

    @property
    def stale(self) -> bool:
        """Coded, but the reported term has changed since (a follow-up): to code again."""
        return self.coding is not None and self.coding.verbatim != self.term

    @property
    def coded(self) -> bool:
        """Coded, for the term as it is reported now."""
        return self.coding is not None and not self.stale


def _role(actor: UserView, allowed: Sequence[Role], what: str) -> None:
    if actor.role not in allowed:
        article = "an" if actor.role.value[0] in "aeiou" else "a"
        raise denied(CodingError)(f"role: {article} {actor.role.value} may not {what}")


# -- the dictionary ---------------------------------------------------------------------------------------


def load_meddra(engine: Engine, actor: UserView, folder: Path, version: str, *, encoding: str = "utf-8") -> ReleaseView:
    """Load the MedDRA release in ``folder`` (its nine ASCII files) as ``version``: checked whole, stored in one
    transaction, audited (``coding.dictionary_loaded`` with each file's SHA-256 and the counts)."""
    _role(actor, LOADERS, "load a dictionary")
    try:
        check_version(version)
    except DictionaryError as exc:
        raise CodingError(str(exc)) from None
    texts: dict[str, str] = {}
    digests: dict[str, str] = {}
    for name in MEDDRA_FILES:
        path = folder / name
        if not path.is_file():
            raise CodingError(f"{name}: the file is missing from {folder}")
        data = path.read_bytes()
        digests[name] = hashlib.sha256(data).hexdigest()
        try:
            texts[name] = data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise CodingError(f"{name} line {line}: not {encoding} text (give the release's --encoding)") from None
    try:
        release = read_meddra(texts)
    except DictionaryError as exc:
        raise CodingError(str(exc)) from None
    now = clock.now()
    counts = release.counts()
    with session_scope(engine) as session:
        if session.execute(select(meddra_releases.c.version).where(meddra_releases.c.version == version)).first():
            raise CodingError(f"--version: MedDRA {version} is loaded already")
        session.execute(
            insert(meddra_releases).values(
                version=version,
                loaded_at=now,
                loaded_by=actor.username,
                files=json.dumps(digests, sort_keys=True),
                counts=json.dumps(counts, sort_keys=True),
            )
        )
        rows: list[dict[str, Any]] = [
            {
                "version": version,
                "level": t.level,
                "code": t.code,
                "name": t.name,
                "search_name": t.name.lower(),
                "pt_code": None,
                "current": None,
                "abbrev": t.abbrev,
            }
            for t in release.terms
        ]
        rows += [
            {
                "version": version,
                "level": "llt",
                "code": t.code,
                "name": t.name,
                "search_name": t.name.lower(),
                "pt_code": t.pt_code,
                "current": t.current,
                "abbrev": None,
            }
            for t in release.llts
        ]
        for start in range(0, len(rows), _BATCH):
            session.execute(insert(meddra_terms), rows[start : start + _BATCH])
        paths = [
            {
                "version": version,
                "pt_code": p.pt_code,
                "hlt_code": p.hlt_code,
                "hlgt_code": p.hlgt_code,
                "soc_code": p.soc_code,
                "is_primary": p.primary,
            }
            for p in release.paths
        ]
        for start in range(0, len(paths), _BATCH):
            session.execute(insert(meddra_paths), paths[start : start + _BATCH])
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="coding.dictionary_loaded",
            new_value={"dictionary": "MedDRA", "version": version, "files": digests, "counts": counts},
        )
    return ReleaseView(version, now, actor.username, counts)


def _active(session: Session) -> str:
    row = session.execute(
        select(meddra_releases.c.version).order_by(meddra_releases.c.loaded_at.desc()).limit(1)
    ).first()
    if row is None:
        raise CodingError("dictionary: no MedDRA release is loaded (trialwright coding load meddra DIR --version V)")
    return str(row.version)


def active_release(engine: Engine) -> ReleaseView | None:
    """The release coding uses: the one loaded last (None before any is loaded)."""
    with read_scope(engine) as session:
        row = session.execute(select(meddra_releases).order_by(meddra_releases.c.loaded_at.desc()).limit(1)).first()
    if row is None:
        return None
    return ReleaseView(row.version, row.loaded_at, row.loaded_by, json.loads(row.counts))


def search_llts(engine: Engine, actor: UserView, text: str, *, limit: int = 50) -> LltSearch:
    """The current LLTs of the active release whose name contains ``text`` (any case): exact matches first, then by
    name; each with its PT and the PT's primary SOC. At most ``limit`` are returned, with the count of all that
    matched (``LltSearch.cut``)."""
    _role(actor, CODERS, "search the dictionary")
    wanted = text.strip().lower()
    if len(wanted) < 2:
        raise CodingError("text: give at least two characters")
    pt, soc = aliased(meddra_terms), aliased(meddra_terms)
    with read_scope(engine) as session:
        version = _active(session)
        llt = meddra_terms
        query = (
            select(
                llt.c.code,
                llt.c.name,
                pt.c.code.label("pt_code"),
                pt.c.name.label("pt_name"),
                soc.c.name.label("soc_name"),
            )
            .join(pt, and_(pt.c.version == llt.c.version, pt.c.level == "pt", pt.c.code == llt.c.pt_code))
            .join(
                meddra_paths,
                and_(
                    meddra_paths.c.version == llt.c.version,
                    meddra_paths.c.pt_code == pt.c.code,
                    meddra_paths.c.is_primary.is_(True),
                ),
            )
            .join(
                soc, and_(soc.c.version == llt.c.version, soc.c.level == "soc", soc.c.code == meddra_paths.c.soc_code)
            )
            .where(
                llt.c.version == version,
                llt.c.level == "llt",
                llt.c.current.is_(True),
                llt.c.search_name.contains(wanted, autoescape=True),
            )
        )
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ordered = query.order_by((llt.c.search_name != wanted), func.length(llt.c.name), llt.c.name).limit(limit)
        matches = tuple(LltMatch(r.code, r.name, r.pt_code, r.pt_name, r.soc_name) for r in session.execute(ordered))
        return LltSearch(text.strip(), matches, total)


# -- coding an event -------------------------------------------------------------------------------------


def _event(session: Session, ae_number: str) -> tuple[Any, str]:
    """The event's row and its reported term now (the latest report's)."""
    event = session.execute(select(adverse_events).where(adverse_events.c.ae_number == ae_number)).first()
    if event is None:
        raise NotFound(f"no adverse event {ae_number}")
    last = session.execute(
        select(ae_reports.c.assessment)
        .where(ae_reports.c.event_id == event.id)
        .order_by(ae_reports.c.sequence.desc())
        .limit(1)
    ).first()
    if last is None:
        raise NotFound(f"no adverse event {ae_number}")
    return event, str(json.loads(last.assessment).get("term") or "")


def _coding(row: Any) -> Coding:
    return Coding(**{c: getattr(row, c) for c in ae_codings.c.keys() if c != "event_id"})  # noqa: SIM118


def _path(session: Session, version: str, llt_code: int) -> dict[str, Any]:
    """The LLT's primary path in ``version`` as ae_codings columns; refuses a code that is not a current LLT."""
    llt = session.execute(
        select(meddra_terms).where(
            meddra_terms.c.version == version, meddra_terms.c.level == "llt", meddra_terms.c.code == llt_code
        )
    ).first()
    if llt is None:
        raise CodingError(f"llt: {llt_code} is not an LLT of MedDRA {version}")
    if not llt.current:
        raise CodingError(f"llt: {llt_code} ({llt.name}) is not current in MedDRA {version}; choose a current LLT")
    path = session.execute(
        select(meddra_paths).where(
            meddra_paths.c.version == version,
            meddra_paths.c.pt_code == llt.pt_code,
            meddra_paths.c.is_primary.is_(True),
        )
    ).one()
    names = {
        (r.level, r.code): r.name
        for r in session.execute(
            select(meddra_terms.c.level, meddra_terms.c.code, meddra_terms.c.name).where(
                meddra_terms.c.version == version,
                meddra_terms.c.code.in_([path.pt_code, path.hlt_code, path.hlgt_code, path.soc_code]),
            )
        )
    }
    codes = {"llt": llt.code, "pt": path.pt_code, "hlt": path.hlt_code, "hlgt": path.hlgt_code, "soc": path.soc_code}
    out: dict[str, Any] = {}
    for level, code in codes.items():
        out[f"{level}_code"] = code
        out[f"{level}_name"] = llt.name if level == "llt" else names[(level, code)]
    return out


def code_event(
    engine: Engine, actor: UserView, ae_number: str, llt_code: int, *, reason: str | None = None
) -> CodingItem:
    """Code the event's reported term to ``llt_code`` of the active release, with its primary path; audited
    ``ae.coded``. Coding an event coded already is a recoding: it needs a reason and is audited ``ae.recoded``
    with the old and new coding."""
    _role(actor, CODERS, "code adverse events")
    checked_text(reason, "reason", error=CodingError)
    with session_scope(engine) as session:
        event, term = _event(session, ae_number)
        require_unlocked(session, event.participant_id, site=event.site)
        if not term.strip():
            raise CodingError(f"term: {ae_number} has no reported term to code")
        version = _active(session)
        values = {
            "dictionary": "MedDRA",
            "version": version,
            "verbatim": term,
            **_path(session, version, llt_code),
            "coded_at": clock.now(),
            "coded_by": actor.username,
        }
        old_row = session.execute(select(ae_codings).where(ae_codings.c.event_id == event.id)).first()
        new = Coding(**values)
        where = {
            "actor": actor.username,
            "role": actor.role.value,
            "site": event.site,
            "participant": event.participant_id,
            "form": f"adverse_event:{ae_number}",
            "field": "term",
        }
        if old_row is None:
            session.execute(insert(ae_codings).values(event_id=event.id, **values))
            audit.record(session, action="ae.coded", new_value=new.as_audit(), **where)
        else:
            old = _coding(old_row)
            if not (reason or "").strip():
                raise CodingError(f"reason: {ae_number} is coded already (to {old.llt_name}); recoding needs a reason")
            if (old.version, old.verbatim, old.llt_code) == (version, term, llt_code):
                raise CodingError(f"llt: {ae_number} is coded to {old.llt_name} already")
            session.execute(ae_codings.update().where(ae_codings.c.event_id == event.id).values(**values))
            audit.record(
                session, action="ae.recoded", old_value=old.as_audit(), new_value=new.as_audit(), reason=reason, **where
            )
        return CodingItem(ae_number, event.participant_id, event.site, term, new)


def query_event(engine: Engine, actor: UserView, ae_number: str, text: str) -> int:
    """Ask the site about an event's reported term (a query on the participant, answered by site staff like any
    query and closed by the coder); audited ``query.raised``. Returns the query's id."""
    _role(actor, CODERS, "ask about adverse events")
    checked_text(text, "text", error=CodingError)
    if not text.strip():
        raise CodingError("text: write the question")
    with session_scope(engine) as session:
        event, _ = _event(session, ae_number)
        require_unlocked(session, event.participant_id, site=event.site)
        question = f"{_question_prefix(ae_number)}{text.strip()}"
        return record_query(
            session,
            actor=actor.username,
            role=actor.role.value,
            participant_id=event.participant_id,
            site=event.site,
            text=question,
            origin="manual",
        )


def _question_prefix(ae_number: str) -> str:
    return f"{ae_number} (coding): "


def _event_query_rows(session: Session, ae_number: str) -> list[Any]:
    event, _ = _event(session, ae_number)
    return list(
        session.execute(
            select(queries)
            .where(
                queries.c.participant_id == event.participant_id,
                queries.c.origin == "manual",
                queries.c.text.startswith(_question_prefix(ae_number), autoescape=True),
            )
            .order_by(queries.c.id)
        ).all()
    )


def event_queries(engine: Engine, actor: UserView, ae_number: str) -> list[QueryView]:
    """The questions asked about an event's reported term (its ``AE-NNNN (coding): ...`` queries), oldest first,
    each with its status, the site's answer and who closed it (NotFound for an event that does not exist)."""
    _role(actor, CODERS, "read the event's queries")
    with read_scope(engine) as session:
        return [query_view(session, r) for r in _event_query_rows(session, ae_number)]


def close_event_query(engine: Engine, actor: UserView, ae_number: str, query_id: int, note: str = "") -> QueryView:
    """Close one of the event's questions: through the query service's ``close_query`` (only its raiser closes it;
    audited ``query.closed``), so it no longer blocks the lock. NotFound for a query not about this event."""
    _role(actor, CODERS, "close queries about adverse events")
    with read_scope(engine) as session:
        ids = {r.id for r in _event_query_rows(session, ae_number)}
    if query_id not in ids:
        raise NotFound(f"no query {query_id} about {ae_number}")
    try:
        return close_query(engine, actor, query_id, note)
    except FormError as exc:
        raise (denied(CodingError) if isinstance(exc, AccessDenied) else CodingError)(str(exc)) from None


# -- reading ---------------------------------------------------------------------------------------------


def _items(session: Session, ae_number: str | None = None) -> list[CodingItem]:
    latest = (
        select(ae_reports.c.event_id, func.max(ae_reports.c.sequence).label("sequence"))
        .group_by(ae_reports.c.event_id)
        .subquery()
    )
    rows = session.execute(
        select(
            adverse_events.c.ae_number,
            adverse_events.c.participant_id,
            adverse_events.c.site,
            ae_reports.c.assessment,
            *[c for c in ae_codings.c if c.name != "event_id"],
            ae_codings.c.event_id.label("coded_event"),
        )
        .join(latest, latest.c.event_id == adverse_events.c.id)
        .join(ae_reports, and_(ae_reports.c.event_id == latest.c.event_id, ae_reports.c.sequence == latest.c.sequence))
        .outerjoin(ae_codings, ae_codings.c.event_id == adverse_events.c.id)
        .where(adverse_events.c.ae_number == ae_number if ae_number is not None else true())
        .order_by(adverse_events.c.ae_number)
    ).all()
    return [
        CodingItem(
            r.ae_number,
            r.participant_id,
            r.site,
            str(json.loads(r.assessment).get("term") or ""),
            _coding(r) if r.coded_event is not None else None,
        )
        for r in rows
    ]


def to_code(engine: Engine, actor: UserView) -> list[CodingItem]:
    """The coder's work list: events not coded, or coded for a reported term that has changed since."""
    _role(actor, CODERS, "list the events to code")
    with read_scope(engine) as session:
        return [i for i in _items(session) if not i.coded]


def coding_item(engine: Engine, actor: UserView, ae_number: str) -> CodingItem:
    """One event as the coder sees it (NotFound for an event that does not exist)."""
    _role(actor, CODERS, "code adverse events")
    with read_scope(engine) as session:
        found = _items(session, ae_number)
    if not found:
        raise NotFound(f"no adverse event {ae_number}")
    return found[0]


def codings_of(session: Session, event_ids: Sequence[int]) -> dict[int, Coding]:
    """The codings of these events (by the event's row id), in the caller's read; events not coded are absent."""
    if not event_ids:
        return {}
    rows = session.execute(select(ae_codings).where(ae_codings.c.event_id.in_(list(event_ids)))).all()
    return {r.event_id: _coding(r) for r in rows}


def codings_by_event(session: Session) -> dict[str, CodingItem]:
    """Every event's coding state by AE number (for the exports, in the caller's read)."""
    return {i.ae_number: i for i in _items(session)}
