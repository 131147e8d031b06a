"""Log forms in the protocol: a log's SDTM mapping is declared in the file and checked there. Each broken mapping
below is refused with its path and line; the two shipped logs (the first trial's, a fictional second trial's with
other field names) load as declared.

| broken                                  | path                                     | rule                           |
|-----------------------------------------|------------------------------------------|--------------------------------|
| the topic (CMTRT) not mapped            | logs[0].sdtm.variables                   | the domain's topic             |
| a variable CM does not take             | logs[0].sdtm.variables.CMXX              | unknown CM variable            |
| a number variable read from a choice    | logs[0].sdtm.variables.CMDOSE            | needs decimal or integer       |
| a field of another log                  | logs[0].sdtm.variables.CMINDC            | unknown field of log conmeds   |
| ongoing read from a date                | logs[1].sdtm.ongoing                     | ongoing needs boolean          |
| ongoing without its time point          | logs[1].sdtm                             | go together                    |
| two logs to one domain                  | logs[1].sdtm.domain                      | one log per SDTM domain        |
| a log named like a form                 | logs[0].id                               | also a form's id               |
| a log field derived                     | logs[0]                                  | never derived                  |
| not_before a field of a form            | logs[0]                                  | same entry                     |
| a log without its Persian name          | logs[0].translations                     | no 'fa' translation            |
| a dose (CMDOSE) with no unit            | logs[0].sdtm.variables.CMDOSE            | mapped with no unit            |
| a dose with a unit field and its own    | logs[0].sdtm.variables.CMDOSE            | one source for the dose unit   |
| a route choice outside the declared CT  | logs[0].sdtm.terminology.CMROUTE         | not in the declared C66729     |
| a route without its declared codelist   | logs[0].sdtm.terminology                 | codelist is not declared       |
| a route declared in another codelist    | logs[0].sdtm.terminology.CMROUTE.codelist| not CMROUTE's codelist         |
| a route from free text                  | logs[0].sdtm.variables.CMROUTE           | needs choice                   |
| a CM log field named atc_code           | logs[0].fields[1].id                     | hides the ATC coding           |
| an MH log field named pt_name           | logs[1].fields[1].id                     | hides the MedDRA coding        |
| a log field named removed_reason        | logs[0]                                  | a column every log's table has |
| an MH log with no ongoing, no MHENDTC   | logs[1].sdtm                             | clinicalStatus needs one       |

An MH log whose mapping names neither an ``ongoing`` field nor an end date (MHENDTC) could never say whether a
condition goes on or ended, which FHIR's Condition needs for its clinicalStatus: the FHIR export would refuse its
every entry (``exports.fhir_logs``), so the protocol is refused where the log is declared.

No CDISC CT file ships with trialwright: the codelists' terms (and the CT package they were checked in) are the
protocol's ``logs[].sdtm.terminology``, and every value the log can write is checked against them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import first_protocol
from trialwright.protocol import ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.logs import LOG_TOPIC


def _variables(**changes: Any) -> Any:
    def mutate(doc: Any) -> None:
        variables = doc["logs"][0]["sdtm"]["variables"]
        for key, value in changes.items():
            if value is None:
                del variables[key]
            else:
                variables[key] = value

    return mutate


def _set(path: list[Any], value: Any) -> Any:
    def mutate(doc: Any) -> None:
        node = doc
        for part in path[:-1]:
            node = node[part]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return mutate


def _drop_ongoing(doc: Any) -> None:
    del doc["logs"][1]["sdtm"]["ongoing"], doc["logs"][1]["sdtm"]["ongoing_until"]


AGE_AT = {"name": "age_at", "inputs": {"birth_date": "started_on", "on_date": "stopped_on"}}

CASES = [
    ("topic not mapped", _variables(CMTRT=None), "logs[0].sdtm.variables", "CMTRT is not mapped"),
    ("unknown variable", _variables(CMXX="dose"), "logs[0].sdtm.variables.CMXX", "unknown CM variable"),
    ("number from a choice", _variables(CMDOSE="route"), "logs[0].sdtm.variables.CMDOSE",
     "route is a choice field; CMDOSE needs decimal or integer"),
    ("field of another log", _variables(CMINDC="condition"), "logs[0].sdtm.variables.CMINDC",
     "unknown field of log conmeds 'condition'"),
    ("ongoing from a date", _set(["logs", 1, "sdtm", "ongoing"], "diagnosed_on"), "logs[1].sdtm.ongoing",
     "ongoing needs boolean"),
    ("ongoing without time point", _set(["logs", 1, "sdtm", "ongoing_until"], None), "logs[1].sdtm",
     "ongoing and ongoing_until go together"),
    ("two logs to CM", _set(["logs", 1, "sdtm"], {"domain": "CM", "variables": {"CMTRT": "condition"}}),
     "logs[1].sdtm.domain", "one log per SDTM domain"),
    ("a log named like a form", _set(["logs", 0, "id"], "demographics"), "logs[0].id", "also a form's id"),
    ("derived field", _set(["logs", 0, "fields", 2, "derived"], AGE_AT), "logs[0]",
     "never derived"),
    ("not_before another form", _set(["logs", 0, "fields", 7, "not_before"], ["demographics.enrolled_on"]),
     "logs[0]", "same entry"),
    ("no Persian name", _set(["logs", 0, "translations"], {}), "logs[0].translations", "no 'fa' translation"),
    ("dose with no unit", _variables(CMDOSU=None), "logs[0].sdtm.variables.CMDOSE", "CMDOSE is mapped with no unit"),
    ("two unit sources", _set(["logs", 0, "fields", 2, "unit"], "mg"), "logs[0].sdtm.variables.CMDOSE",
     "dose declares its unit 'mg' and CMDOSU reads dose_unit: one source for the dose unit"),
    ("route outside CT", _set(["logs", 0, "sdtm", "terminology", "CMROUTE", "terms"], ["ORAL", "INTRAVENOUS"]),
     "logs[0].sdtm.terminology.CMROUTE",
     "not in the declared C66729 terms or extensions (CT 2025-03-28): route choice 'SUBCUTANEOUS', route choice "
     "'INTRAMUSCULAR'"),
    ("CT package not shipped", _set(["logs", 0, "sdtm", "terminology", "CMROUTE", "version"], "2024-09-27"),
     "logs[0].sdtm.terminology.CMROUTE.version",
     "SDTM CT 2024-09-27: trialwright ships and checks terms in SDTM CT 2025-03-28 only"),
    ("term not in the CT codelist", _set(["logs", 0, "sdtm", "terminology", "CMROUTE", "terms"],
                                         ["ORAL", "INTRAVENOUS", "SUBCUTANEOUS", "INTRAMUSCULAR", "INHALED"]),
     "logs[0].sdtm.terminology.CMROUTE.terms[4]",
     "'INHALED' is not a term of ROUTE (C66729) in SDTM CT 2025-03-28; a sponsor term goes in extensions"),
    ("an extension that is a CT term", _set(["logs", 0, "sdtm", "terminology", "CMDOSFRQ", "extensions"], ["BID"]),
     "logs[0].sdtm.terminology.CMDOSFRQ.extensions[0]", "'BID' is a term of FREQ (C71113): list it in terms"),
    ("route codelist undeclared", _set(["logs", 0, "sdtm", "terminology", "CMROUTE"], None),
     "logs[0].sdtm.terminology", "CMROUTE is written but its CDISC CT codelist is not declared"),
    ("route in another codelist", _set(["logs", 0, "sdtm", "terminology", "CMROUTE", "codelist"], "C71113"),
     "logs[0].sdtm.terminology.CMROUTE.codelist", "C71113 is not CMROUTE's codelist (C66729"),
    ("route from free text", _variables(CMROUTE="indication"), "logs[0].sdtm.variables.CMROUTE",
     "indication is a text field; CMROUTE needs choice"),
    ("a field named like an ATC coding column", _set(["logs", 0, "fields", 1, "id"], "atc_code"),
     "logs[0].fields[1].id", "'atc_code' is one of the ATC coding columns the exports write beside this log's fields "
     "(atc_version, atc_code, atc_name); the field would hide the entry's coding"),
    ("a field named like a MedDRA coding column", _set(["logs", 1, "fields", 1, "id"], "pt_name"),
     "logs[1].fields[1].id", "'pt_name' is one of the MedDRA coding columns"),
    ("a field named removed_reason", _set(["logs", 0, "fields", 1, "id"], "removed_reason"), "logs[0]",
     "'removed_reason' is a column every log's table in the exports begins with"),
    ("an MH log saying neither ongoing nor ended", _drop_ongoing, "logs[1].sdtm",
     "log medical_history maps neither an ongoing field nor MHENDTC (an end date): the FHIR Condition's "
     "clinicalStatus (active or inactive) needs one of them"),
]  # fmt: skip


@pytest.mark.parametrize(("broken", "mutate", "path", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_log_is_refused_with_its_path_and_line(broken: str, mutate: Any, path: str, words: str) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="broken.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"no problem at {path} containing {words!r}; got:\n{caught.value}"
    assert matches[0].line is not None
    assert f"broken.yaml:{matches[0].line}: {path}: " in str(caught.value)
    # the reported line lies inside the logs section
    logs_line = text.splitlines().index("logs:") + 1
    assert matches[0].line > logs_line


def test_the_first_trial_declares_a_medication_log_and_a_medical_history_log() -> None:
    protocol = first_protocol().protocol
    conmeds, history = protocol.log("conmeds"), protocol.log("medical_history")
    assert conmeds.sdtm is not None and history.sdtm is not None
    assert (conmeds.sdtm.domain, history.sdtm.domain) == ("CM", "MH")
    assert conmeds.sdtm.variables["CMTRT"] == "medication" and history.sdtm.variables["MHTERM"] == "condition"
    assert conmeds.translations["fa"] and history.translations["fa"]
    assert {"conmeds", "medical_history"}.isdisjoint(f.id for f in protocol.forms)


def test_a_second_trial_maps_its_own_field_names() -> None:
    protocol = load_protocol(ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml").protocol
    (log,) = protocol.logs
    assert log.sdtm is not None and log.sdtm.variables[LOG_TOPIC["CM"]] == "drug"
    assert log.sdtm.ongoing_until == "DAY 28"


def test_a_field_named_like_the_other_dictionarys_column_is_no_collision() -> None:
    """A medication log is coded to ATC, so its table has no pt_name column: a field of that name hides nothing."""

    def rename(doc: Any) -> None:
        doc["logs"][0]["fields"][1]["id"] = "pt_name"
        doc["logs"][0]["sdtm"]["variables"]["CMINDC"] = "pt_name"

    assert load_protocol_text(mutated_text(rename)).protocol.log("conmeds").fields[1].id == "pt_name"


def test_an_mh_log_with_an_end_date_and_no_ongoing_field_is_accepted() -> None:
    """MHENDTC alone can say a condition ended: the log is accepted (an entry with neither is refused at export)."""

    def end_date_only(doc: Any) -> None:
        _drop_ongoing(doc)
        history = doc["logs"][1]
        history["fields"].append({"id": "resolved_on", "label": "Resolved", "type": "date", "required": False,
                                  "translations": {"fa": "تاریخ بهبود"}})
        history["sdtm"]["variables"]["MHENDTC"] = "resolved_on"

    log = load_protocol_text(mutated_text(end_date_only)).protocol.log("medical_history")
    assert log.sdtm is not None and log.sdtm.ongoing is None and log.sdtm.variables["MHENDTC"] == "resolved_on"


def test_a_stored_protocol_with_such_a_log_still_loads() -> None:
    """A trial stored before the rule keeps opening; its FHIR export refuses the entries instead (never its pages)."""
    protocol = load_protocol_text(mutated_text(_drop_ongoing), stored=True).protocol
    assert protocol.log("medical_history").sdtm.ongoing is None  # type: ignore[union-attr]
