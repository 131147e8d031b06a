"""The SDTM rows of events and logs: AE from the adverse events (MedDRA coding, severity, seriousness criteria,
the protocol's action and causality mappings), CM and MH from the log entries (each variable from the field the
protocol maps to it; ATC and MedDRA codings), and a participant's death (``read_death``: the earliest death its
records give, by ``trialwright.domain.deaths``; disagreeing or undated sources named in README.txt).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from trialwright.domain.deaths import deaths_found, fatal_death, undated_deaths
from trialwright.domain.log_undeclared import undeclared
from trialwright.domain.safety import names_death
from trialwright.exports.meddra import sdtm_coding_columns
from trialwright.exports.sdtm_build import Build, SubjectFacts, day_of, dtc, yn
from trialwright.exports.sdtm_domains import (
    CRITERIA,
    OUTCOMES,
    SEVERITY,
)
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType
from trialwright.protocol.logs import LOG_DOSES, dose_unit

__all__ = ["add_adverse_event", "add_logs", "read_death"]


def add_adverse_event(
    build: Build, pid: str, site: str, a: Mapping[str, Any], related: bool, number: str,
    coding: Mapping[str, Any] | None = None,
) -> None:
    grade = a.get("grade")
    term = a.get("term")
    if isinstance(term, str) and names_death(term):
        build.notes.append(f"AE {number}: the reported term {term!r} names death, not the event that caused it "
                           "(SDTMIG 3.4 AE: death is an outcome, AEOUT FATAL / AESDTH Y); written as reported, "
                           "to be corrected in the adverse event report.")  # fmt: skip
    subject = build.subjects.get(pid)
    onset = a.get("onset")
    criteria = set(a.get("seriousness_criteria") or [])
    serious = bool(a.get("serious"))
    row = {
        **build.ids(pid),
        "AESPID": number,
        "AETERM": a.get("term"),
        **sdtm_coding_columns(coding),
        "AESEV": SEVERITY.get(grade) if isinstance(grade, int) else None,
        "AETOXGR": str(grade) if grade is not None else None,
        "AESER": yn(serious),
        "AEACN": _aeacn(build.protocol).get(str(a.get("action_taken"))) if a.get("action_taken") else None,
        "AEREL": "RELATED" if related else "NOT RELATED",
        "AEOUT": OUTCOMES.get(str(a.get("outcome"))),
        "EPOCH": build.epoch_on(subject, day_of(onset)) if subject else None,
        "AESTDTC": a.get("onset"),
        "AEENDTC": a.get("end"),
    }
    row.update({name: yn(code in criteria) if serious else None for name, code in CRITERIA.items()})
    if a.get("action_taken") and row["AEACN"] is None:  # a code the protocol does not declare: never guessed
        build.notes.append(f"AE {number}: AEACN empty: the action taken {a.get('action_taken')!r} is not one of "
                           "the protocol's safety actions")  # fmt: skip
    build.sinks["AE"].add(row)
    died = fatal_death(number, a)
    if died is not None and pid in build.subjects:
        build.subjects[pid].fatal.append(died)


def read_death(build: Build, pid: str, subject: SubjectFacts) -> None:
    """DTHDTC/DTHFL and DS DEATH from the earliest death the participant's records give, by the rule the visits
    after a death follow (``trialwright.domain.deaths``): fatal adverse events, the death record, the
    vital-status fields. Sources that disagree on the day are listed in the README, and so is a status saying
    died without a date (no day is guessed)."""
    found = deaths_found(build.protocol, subject.death_values, subject.fatal)
    usubjid = f"{build.source.trial_id}-{pid}"
    if found:
        subject.death = found[0].on
        if len({d.on for d in found}) > 1:
            said = "; ".join(f"{d.on.isoformat()} ({d.source})" for d in found)
            build.notes.append(f"DM {usubjid}: the records disagree on the date of death: {said}; "
                               f"DTHDTC is the earliest, {found[0].on.isoformat()}")  # fmt: skip
    for source in undated_deaths(build.protocol, subject.death_values):
        build.notes.append(f"DM {usubjid}: {source} says died but gives no date; no death is counted from it "
                           "(no date guessed)")  # fmt: skip


def add_logs(build: Build) -> None:
    """CM and MH from the log entries, each variable from the field the protocol maps to it (removed entries
    left out, counted in README.txt); a domain no log is written to stays empty, and README.txt says so."""
    written: set[str] = set()
    held = ((e.log_id, e.values) for e in build.source.logs())
    build.notes += [f"{u.describe()}; not in CM or MH" for u in undeclared(build.protocol, held)]
    for log in build.protocol.logs:
        if log.sdtm is None:
            build.notes.append(f"logs/{log.id}: the protocol writes it to no SDTM domain (no sdtm:); it is in "
                               "the tabular exports only.")  # fmt: skip
            continue
        sdtm, code = log.sdtm, log.sdtm.domain
        written.add(code)
        fields = {f.id: f for f in log.fields}
        removed, uncoded, versions = 0, 0, set()
        for entry in build.source.logs(log.id):
            if entry.state != "active":
                removed += 1
                continue
            zone = build.zone(entry.site)
            row: dict[str, Any] = {**build.ids(entry.participant_id), f"{code}SPID": str(entry.sequence)}
            for variable, field_id in sdtm.variables.items():
                stored = entry.values.get(field_id)
                value = stored.get("value") if isinstance(stored, Mapping) else None
                if value is None:
                    row[variable] = None
                elif variable in LOG_DOSES:
                    row[variable] = float(value)
                    if unit := dose_unit(log, variable):  # no CMDOSU field: the dose field's own unit
                        row["CMDOSU"] = unit
                elif fields[field_id].type is FieldType.DATETIME:  # stored as ISO text in UTC
                    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
                    row[variable] = dtc(moment, zone)
                else:
                    row[variable] = str(value)
            ongoing = entry.values.get(sdtm.ongoing) if sdtm.ongoing else None
            if isinstance(ongoing, Mapping) and ongoing.get("value") is True:
                row[f"{code}ENRTPT"], row[f"{code}ENTPT"] = "ONGOING", sdtm.ongoing_until
            uncoded += entry.coding is None
            versions |= {entry.coding["version"]} if entry.coding else set()
            if code == "MH":
                row.update(_meddra_columns(entry.coding))
            if code == "CM":
                row.update(_atc_columns(entry.coding, sdtm.atc_class_level))
                subject = build.subjects.get(entry.participant_id)
                row["EPOCH"] = build.epoch_on(subject, day_of(row.get("CMSTDTC"))) if subject else None
            build.sinks[code].add(row)
        if removed:
            build.notes.append(f"{code}: {removed} removed entr{'y' if removed == 1 else 'ies'} of logs/{log.id} "
                               "left out (kept, with the reason, in the tabular exports).")  # fmt: skip
        if code == "CM" and versions:
            build.notes.append(f"CM coded with WHO ATC {', '.join(sorted(versions))}")
        if code == "CM" and uncoded:
            build.notes.append(f"CM: {uncoded} medication(s) not coded to ATC (CMDECOD, CMCLAS empty).")
        if code == "MH" and uncoded:
            build.notes.append(f"MH: {uncoded} term(s) not coded to MedDRA (MHDECOD, MHBODSYS empty).")
        if code == "MH" and versions:
            build.notes.append(f"MH coded with MedDRA {', '.join(sorted(versions))}")
    for code in ("CM", "MH"):
        if code not in written:
            build.notes.append(f"{code}: no records: the protocol declares no log written to {code}, so none "
                               "was collected (not: none taken).")  # fmt: skip


def _atc_columns(coding: Mapping[str, Any] | None, class_level: int | None) -> dict[str, Any]:
    """CMDECOD (the ATC level-5 name) and CMCLAS/CMCLASCD (the code and name at the declared level) of a coding."""
    if coding is None or coding.get("dictionary") != "ATC":
        return {"CMDECOD": None, "CMCLAS": None, "CMCLASCD": None}
    at = {int(p["level"]): p for p in coding["path"]}
    chosen = at.get(class_level) if class_level is not None else None
    return {"CMDECOD": coding["name"], "CMCLAS": chosen["name"] if chosen else None,
            "CMCLASCD": chosen["code"] if chosen else None}  # fmt: skip


def _meddra_columns(coding: Mapping[str, Any] | None) -> dict[str, Any]:
    """MHDECOD (the PT, level 4 of the stored path) and MHBODSYS (the primary SOC, level 1) of a MedDRA coding."""
    if coding is None or coding.get("dictionary") != "MedDRA":
        return {"MHDECOD": None, "MHBODSYS": None}
    at = {int(p["level"]): p for p in coding["path"]}
    return {"MHDECOD": at[4]["name"], "MHBODSYS": at[1]["name"]}


def _aeacn(protocol: Protocol) -> dict[str, str]:
    """Each declared action taken's SDTM term (AEACN): the protocol names it beside the trial's own words."""
    return {a.code: a.sdtm.value for a in protocol.safety.action_choices}
