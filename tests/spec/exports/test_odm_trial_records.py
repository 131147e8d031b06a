"""The rest of the trial in the ODM export and back (both databases): who obtained each consent and its other details,
who recorded each withdrawal and when, and the DSMB's decisions on the safety pause.

* a consent given by a representative, with a witness: on ``tw:Enrolment``, ``ConsentFormVersion``, ``ConsentKind``,
  ``ConsentObtainedBy``, ``RepresentativeName``, ``RepresentativeRelationship``, ``ConsentWitness``,
  ``ConsentRecordedAt``, ``ConsentRecordedBy``; restored into every column of ``consents``;
* a consent given by the participant: the same, without representative or witness;
* a withdrawal from the intervention: on ``tw:Withdrawal``, ``RecordedAt`` and ``RecordedBy``; restored into every
  column of ``withdrawals``;
* the DSMB pauses, then resumes: ``ClinicalData/tw:DsmbDecision`` after the participants (``Decision``,
  ``RelatedSaes``, ``DecidedAt``, ``DecidedBy``); restored into ``dsmb_decisions``, all but the reason.

The DSMB's reason is its free text, which may speak of the arms (here it names one): it is never in the file, and the
imported decision says so in its place. The file stays valid against CDISC's ODM 1.3.2 schema with the extension, and
export -> import -> export is byte-identical; ``audit verify`` (chain and replay) passes on the imported trial.

What cannot be restored exactly is refused naming the element or attribute and the rule, and nothing is written:

| the file edited                                         | refused at                                              |
|---------------------------------------------------------|---------------------------------------------------------|
| the consent's record time at +03:30 (the same instant)  | tw:Enrolment/@ConsentRecordedAt: not as the export writes |
| who obtained the consent left out (the rest there)      | tw:Enrolment/@ConsentObtainedBy: required                |
| a consent form version the protocol does not have       | tw:Enrolment/@ConsentFormVersion                          |
| a representative's consent without the representative  | tw:Enrolment/@RepresentativeName: required                |
| who recorded a withdrawal left out                      | tw:Withdrawal[1]/@RecordedBy: required                    |
| when a withdrawal was recorded left out                 | tw:Withdrawal[1]/@RecordedAt: required                    |
| a DSMB decision's count with a leading zero             | tw:DsmbDecision[1]/@RelatedSaes                           |
| a DSMB decision's count in Persian digits               | tw:DsmbDecision[1]/@RelatedSaes                           |
| a DSMB decision's time written with Z                   | tw:DsmbDecision[1]/@DecidedAt                             |
| a DSMB decision with a reason added                     | tw:DsmbDecision[1]/@Reason: the export never writes it    |
| a decision the service does not know                    | tw:DsmbDecision[1]/@Decision                              |
| a decision after a decision to stop                     | tw:DsmbDecision[2]: follows a decision to stop            |
| the two decisions' times swapped                        | tw:DsmbDecision[2]/@DecidedAt: ... is before              |
| no consent details, the withdrawal's recorder there     | tw:Withdrawal[1]/@RecordedAt: present, but ... absent     |
| no consent details, a withdrawal without its recorder,  | tw:Withdrawal[2]/@RecordedAt: present, but ... absent     |
| then one with it                                         |                                                           |
| the second participant's consent details left out       | tw:Enrolment/@ConsentFormVersion: required, but ...       |

A trial that already holds a DSMB decision is not fresh: the import is refused (as for a participant or screening).

A file written before the export carried them (none of these attributes) still imports: its consent says who obtained
it was not in the export, as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.spec.exports.test_odm_queries import _export, _taken, _valid
from tests.spec.logs.test_log_odm import target
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import PASSWORD, Trial, first_protocol, make_trial, screener, username, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.services import audit
from trialwright.services.exports import export_source
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm
from trialwright.services.odm_import_records import DSMB_REASON_NOT_IN_FILE, NOT_IN_FILE
from trialwright.services.replay import replay
from trialwright.services.safety import pause, record_decision
from trialwright.services.screening import enrol, record_consent, screen, withdraw
from trialwright.store.engine import session_scope
from trialwright.store.safety_tables import dsmb_decisions
from trialwright.store.screening_tables import consents, participants, withdrawals

__all__ = ["target"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"


@pytest.fixture
def trial(database_url: str) -> Any:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _arm_name() -> str:
    return first_protocol().protocol.arms[0].name


def _the_rest(trial: Trial) -> None:
    """Two participants (one consented for by a representative, with a witness; she withdraws from the
    intervention) and the DSMB's pause and resume, through the services."""
    e, admin = trial.engine, screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    now = dt.datetime.now(dt.UTC)
    enrolled = []
    for given_by in ("representative", "participant"):
        s = screen(e, admin, site="RAZ", screened_on=now.date(), values=TYPED)
        more = {"representative_name": "Maryam Rahimi", "representative_relationship": "daughter",
                "witness": 'Nurse "S." & <ward 3>'} if given_by == "representative" else {}  # fmt: skip
        record_consent(e, admin, s.id, form_version="1.0", given_by=given_by, obtained_by="Dr K",
                       obtained_at=now - dt.timedelta(minutes=30), **more)  # fmt: skip
        made = enrol(e, admin, s.id).participant
        assert made is not None
        enrolled.append(made.participant_id)
    withdraw(e, who(trial, Role.INVESTIGATOR), enrolled[0], scope="intervention", cause="withdrew_consent",
             reason="The daughter asked to stop the infusions", withdrawn_on=None)  # fmt: skip
    dsmb = who(trial, Role.DSMB_MEMBER)
    record_decision(e, dsmb, "pause", f"Imbalance of events in the {_arm_name()} arm", PASSWORD)
    record_decision(e, dsmb, "resume", "Reviewed unblinded; no signal", PASSWORD)


def _as_stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The consents, withdrawals and DSMB decisions as the tables hold them (database ids left out; the DSMB's reason
    apart)."""
    c, w, d = consents.c, withdrawals.c, dsmb_decisions.c
    queries = {
        "consents": select(participants.c.participant_id, *(col for col in c if col.name not in {"id", "screening_id"}))
        .join(participants, participants.c.screening_id == c.screening_id),
        "withdrawals": select(*(col for col in w if col.name != "id")),
        "dsmb_decisions": select(*(col for col in d if col.name not in {"id", "reason"})).order_by(d.id),
    }  # fmt: skip
    with session_scope(engine) as session:
        return {name: [tuple(r) for r in session.execute(q)] for name, q in queries.items()}


def _reasons(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.execute(select(dsmb_decisions.c.reason).order_by(dsmb_decisions.c.id)).scalars())


def test_the_consent_withdrawal_and_dsmb_decisions_are_in_the_file_without_the_dsmb_reason(
    trial: Trial, tmp_path: Path
) -> None:
    _the_rest(trial)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    stored = _as_stored(trial.engine)
    by_pid = {row[0]: row for row in stored["consents"]}
    names = [col.name for col in consents.c if col.name not in {"id", "screening_id"}]
    for subject in root.iter(f"{ODM}SubjectData"):
        enrolment = subject.find(f"{TW}Enrolment")
        assert enrolment is not None
        row = dict(zip(names, by_pid[subject.get("SubjectKey")][1:], strict=True))
        assert enrolment.get("ConsentObtainedBy") == row["obtained_by"] == "Dr K"
        assert enrolment.get("ConsentFormVersion") == row["form_version"]
        assert enrolment.get("ConsentKind") == row["kind"] == "initial"
        assert enrolment.get("RepresentativeName") == row["representative_name"]
        assert enrolment.get("RepresentativeRelationship") == row["representative_relationship"]
        assert enrolment.get("ConsentWitness") == row["witness"]
        assert enrolment.get("ConsentRecordedBy") == row["recorded_by"] == "screener"
        assert dt.datetime.fromisoformat(enrolment.get("ConsentRecordedAt", "")) == row["recorded_at"]
    assert 'RepresentativeName="Maryam Rahimi"' in text
    assert 'ConsentWitness="Nurse &quot;S.&quot; &amp; &lt;ward' in text
    (left,) = root.iter(f"{TW}Withdrawal")
    (w,) = stored["withdrawals"]
    assert left.get("RecordedBy") == w[-1] == username(Role.INVESTIGATOR)
    assert dt.datetime.fromisoformat(left.get("RecordedAt", "")) == w[-2]
    clinical = root.find(f"{ODM}ClinicalData")
    assert clinical is not None
    assert [c.tag for c in clinical][-2:] == [f"{TW}DsmbDecision"] * 2  # after the participants
    decisions = [dict(d.attrib) for d in clinical.findall(f"{TW}DsmbDecision")]
    assert [(d["Decision"], d["RelatedSaes"], d["DecidedBy"]) for d in decisions] == [
        ("pause", "0", username(Role.DSMB_MEMBER)), ("resume", "0", username(Role.DSMB_MEMBER))
    ]  # fmt: skip
    assert [dt.datetime.fromisoformat(d["DecidedAt"]) for d in decisions] == [r[2] for r in stored["dsmb_decisions"]]
    assert "Imbalance" not in text and "no signal" not in text  # the DSMB's reasons: never in the file
    for arm in first_protocol().protocol.arms:  # the blind: no arm code or name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code


def test_export_import_export_with_them_is_byte_identical_and_restores_them_exactly(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _the_rest(trial)
    path = _export(trial, tmp_path / "odm")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.dsmb_decisions == 2 and "DSMB decisions: 2" in report.summary()
    before, after = _as_stored(trial.engine), _as_stored(target.engine)
    assert after == before
    assert sorted(r[2] for r in after["consents"]) == ["participant", "representative"]  # given by
    assert len(after["withdrawals"]) == 1 and len(after["dsmb_decisions"]) == 2
    assert _reasons(target.engine) == [DSMB_REASON_NOT_IN_FILE] * 2
    assert pause(target.engine) == pause(trial.engine)
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    entries = audit.entries(target.engine, action_prefix="import.odm", limit=10_000)
    kept = [json.loads(e.new_value or "{}")["dsmb_decision"] for e in entries
            if "dsmb_decision" in (e.new_value or "")]  # fmt: skip
    assert sorted(k["decision"] for k in kept) == ["pause", "resume"]
    assert all(set(k) == {"decision", "related_saes", "decided_at", "decided_by"} for k in kept)  # no reason
    with_consent = [json.loads(e.new_value or "{}") for e in entries if '"consent"' in (e.new_value or "")]
    assert sorted(k["consent"]["obtained_by"] for k in with_consent) == ["Dr K", "Dr K"]
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message
    replayed = replay(target.engine)
    assert replayed.ok, replayed.message
    text = " ".join(NOT_RESTORED)
    assert "who obtained" not in text.split("in a file written before")[0]  # restored now, but from older files
    assert "reasons the DSMB gave" in text and "SAE notifications" in text
    assert "lock" not in text  # the trial lock and soft locks travel now (tests/spec/exports/test_odm_locks.py)


def _edit(pattern: str, replacement: str, count: int = 1) -> Any:
    def edit(text: str) -> str:
        changed, n = re.subn(pattern, replacement, text, count=count)
        assert n, f"the export has no {pattern!r} to edit"
        return changed

    return edit


_CONSENT = ("ConsentFormVersion", "ConsentKind", "ConsentObtainedBy", "RepresentativeName",
            "RepresentativeRelationship", "ConsentWitness", "ConsentRecordedAt", "ConsentRecordedBy")  # fmt: skip


def _without_consent(text: str) -> str:
    return re.sub(rf' (?:{"|".join(_CONSENT)})="[^"]*"', "", text)


def _swap_decided_at(text: str) -> str:
    first, second = re.findall(r'<tw:DsmbDecision [^>]*DecidedAt="([^"]+)"', text)
    assert first != second
    swapped = {first: second, second: first}
    return re.sub(r'(<tw:DsmbDecision [^>]*DecidedAt=)"([^"]+)"', lambda m: f'{m[1]}"{swapped[m[2]]}"', text)


def _withdrawals_mixed(text: str) -> str:
    """No consent details, the withdrawal without who recorded it, then a second one (from the study) with it."""
    left = re.search(r"<tw:Withdrawal [^>]*/>", text)
    assert left is not None
    older = re.sub(r' Recorded(?:At|By)="[^"]*"', "", left[0])
    later = left[0].replace('Scope="intervention"', 'Scope="study"')
    assert older != left[0] != later
    return _without_consent(text.replace(left[0], older + later))


def _second_consent_left_out(text: str) -> str:
    enrolments = re.findall(r"<tw:Enrolment [^>]*>", text)
    assert len(enrolments) == 2
    return text.replace(enrolments[1], _without_consent(enrolments[1]))


# the file edited, how, and what the refusal names (see the module's table)
REFUSED = [
    ("consent time at +03:30",
     lambda t: re.sub(r'ConsentRecordedAt="([^"]+)"', lambda m: 'ConsentRecordedAt="' + dt.datetime.fromisoformat(
         m.group(1)).astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30))).isoformat() + '"', t, count=1),
     ["tw:Enrolment/@ConsentRecordedAt", "is not written as the export writes a time"]),
    ("no ConsentObtainedBy", _edit(r' ConsentObtainedBy="[^"]*"', ""), ["tw:Enrolment/@ConsentObtainedBy: required"]),
    ("unknown consent form version", _edit(r'ConsentFormVersion="[^"]*"', 'ConsentFormVersion="9.9"'),
     ["tw:Enrolment/@ConsentFormVersion: '9.9' is not a consent form version"]),
    ("a representative without a name", _edit(r' RepresentativeName="[^"]*"', ""),
     ["tw:Enrolment/@RepresentativeName: required when a representative consented"]),
    ("no withdrawal RecordedBy", _edit(r' RecordedBy="[^"]*"/>', "/>"), ["tw:Withdrawal[1]/@RecordedBy: required"]),
    ("no withdrawal RecordedAt", _edit(r' RecordedAt="[^"]*"', ""), ["tw:Withdrawal[1]/@RecordedAt: required"]),
    ("a count with a leading zero", _edit(r'RelatedSaes="0"', 'RelatedSaes="00"'),
     ["tw:DsmbDecision[1]/@RelatedSaes: '00' is not a count as the export writes one"]),
    ("a count in Persian digits", _edit(r'RelatedSaes="0"', 'RelatedSaes="\u06f0"'),
     ["tw:DsmbDecision[1]/@RelatedSaes", "ASCII digits"]),
    ("a time written with Z", _edit(r'(<tw:DsmbDecision [^>]*DecidedAt="[^"]+)\+00:00"', r'\1Z"', count=0),
     ["tw:DsmbDecision[1]/@DecidedAt", "is not written as the export writes a time"]),
    ("a reason added", _edit(r"<tw:DsmbDecision ", '<tw:DsmbDecision Reason="arm A looked worse" '),
     ["tw:DsmbDecision[1]/@Reason: the export never writes it"]),
    ("an unknown decision", _edit(r'Decision="pause"', 'Decision="halt"'),
     ["tw:DsmbDecision[1]/@Decision: 'halt' is not one of resume, pause, stop"]),
    ("a decision after a stop", _edit(r'Decision="pause"', 'Decision="stop"'),
     ["tw:DsmbDecision[2]: follows a decision to stop, which is final"]),
    ("decision times swapped", _swap_decided_at,
     ["tw:DsmbDecision[2]/@DecidedAt:", "is before tw:DsmbDecision[1]'s", "the decisions are in the order made"]),
    ("no consent details, the withdrawal recorded", _without_consent,
     ["tw:Withdrawal[1]/@RecordedAt: present, but", "/tw:Enrolment/@ConsentFormVersion is absent",
      "some but not all is refused"]),
    ("withdrawals with and without their recorder", _withdrawals_mixed,
     ["tw:Withdrawal[2]/@RecordedAt: present, but", "@ConsentFormVersion is absent"]),
    ("the second consent's details left out", _second_consent_left_out,
     ["tw:Enrolment/@ConsentFormVersion: required, but", "/tw:Enrolment/@ConsentFormVersion is present"]),
]  # fmt: skip


def test_what_cannot_be_restored_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _the_rest(trial)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = (_as_stored(target.engine), audit.count(target.engine))
    for case, change, named in REFUSED:
        bad = tmp_path / f"{case.replace(' ', '-')}.odm.xml"
        bad.write_text(change(text), encoding="utf-8")
        with pytest.raises(OdmImportError) as refused:
            import_odm(target.engine, manager, bad)
        for words in named:
            assert words in str(refused.value), (case, str(refused.value))
        assert (_as_stored(target.engine), audit.count(target.engine)) == before, case


def test_a_trial_already_holding_a_dsmb_decision_is_not_fresh_and_the_import_is_refused(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    """The file's decisions would follow the target's own (a stop among them, or times out of order), so the import
    goes into a fresh trial only: one holding no DSMB decision either."""
    _the_rest(trial)
    path = _export(trial, tmp_path / "odm")
    record_decision(target.engine, who(target, Role.DSMB_MEMBER), "stop", "Futility", PASSWORD)
    before = (_as_stored(target.engine), audit.count(target.engine))
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert "trial: this trial already holds 0 participants, 0 screenings and 1 DSMB decisions" in str(refused.value)
    assert "imported only into a fresh trial" in str(refused.value)
    assert (_as_stored(target.engine), audit.count(target.engine)) == before


def test_a_file_written_before_the_export_carried_them_still_imports(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    """Without any of the new attributes (and no DSMB decision) the file imports as before: the consent says who
    obtained it was not in the export, the withdrawal names the importer."""
    _the_rest(trial)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    names = ("ConsentFormVersion", "ConsentKind", "ConsentObtainedBy", "RepresentativeName",
             "RepresentativeRelationship", "ConsentWitness", "ConsentRecordedAt", "ConsentRecordedBy", "RecordedAt",
             "RecordedBy", "ConsentId", "ProtocolVersionInForce", "AgeInForce", "AssentRuleInForce")  # fmt: skip
    older = re.sub(rf' (?:{"|".join(names)})="[^"]*"', "", text)
    older = re.sub(r" *<tw:DsmbDecision [^>]*/>\n", "", older)
    path = tmp_path / "older.odm.xml"
    path.write_text(older, encoding="utf-8")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.dsmb_decisions == 0 and not report.byte_identical
    after = _as_stored(target.engine)
    assert {r[consents.c.keys().index("obtained_by") - 1] for r in after["consents"]} == {NOT_IN_FILE}
    assert {r[-1] for r in after["withdrawals"]} == {username(Role.DATA_MANAGER)}
    assert audit.verify(target.engine).ok
