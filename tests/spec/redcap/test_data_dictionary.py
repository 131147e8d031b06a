"""The REDCap data dictionary (docs/redcap.md "Data dictionary"): `protocol from-redcap` drafts a protocol from a
dictionary, listing every part that does not map; `protocol to-redcap` writes a protocol's dictionary with the
builder the REDCap-compatible API's metadata answers with. The dictionaries under tests/data/redcap/ are written
here from REDCap's documentation of the format (18 columns, field types, validations, calculations)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app
from trialwright.domain.redcap_dictionary import HEADERS, TO_WRITE

DATA = Path(__file__).resolve().parents[2] / "data" / "redcap"
SMALL = DATA / "small_trial_dictionary.csv"
EVENTS = DATA / "small_trial_events.csv"
runner = CliRunner()

#: The columns a protocol carries (the rest: layout, surveys, annotations, branching, identifiers, which the
#: report lists instead).
MAPPED = (
    "Variable / Field Name", "Form Name", "Field Type", "Field Label", "Choices, Calculations, OR Slider Labels",
    "Field Note", "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max",
    "Required Field?",
)  # fmt: skip


def _run(*args: str) -> Any:
    return runner.invoke(app, ["protocol", *args], terminal_width=400)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _from_redcap(tmp_path: Path, dictionary: Path, events: Path | None, name: str = "draft.yaml") -> Path:
    out = tmp_path / name
    args = ["from-redcap", str(dictionary), "--output", str(out)]
    result = _run(*args, *(["--instrument-event-mapping", str(events)] if events else []))
    assert result.exit_code == 0, result.output
    return out


def _complete(
    draft: Path,
    rest: dict[str, Any],
    fields: dict[tuple[str, str], dict[str, Any]] | None = None,
    forms: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """The draft with what the user writes: the trial-level sections, each visit's reference and day (``rest``),
    and per form and field the facts no dictionary carries (``forms``, ``fields``; a choice's translations are
    given by code as ``choice_translations``)."""
    y = YAML(typ="safe", pure=True)
    doc = y.load(draft.read_text(encoding="utf-8"))
    facts = {v["id"]: v for v in rest.pop("visits")}
    for visit in doc["visits"]:
        visit.update({k: v for k, v in facts[visit["id"]].items() if k not in {"forms", "name"}})
    for form in doc["forms"]:
        form.update((forms or {}).get(form["id"], {}))
        for field in form["fields"]:
            facts = dict((fields or {}).get((form["id"], field["id"]), {}))
            translated = facts.pop("choice_translations", {})
            for choice in field.get("choices", []):
                if translated.get(choice["code"]):
                    choice["translations"] = translated[choice["code"]]
            field.update(facts)
    doc.update(rest)
    out = draft.with_name("complete.yaml")
    with out.open("w", encoding="utf-8") as f:
        YAML().dump(doc, f)
    return out


def test_the_draft_is_refused_by_check_only_for_what_the_user_still_writes(tmp_path: Path) -> None:
    draft = _from_redcap(tmp_path, SMALL, EVENTS)
    result = _run("check", str(draft), "--json")
    assert result.exit_code == 1
    problems = {(p["path"], p["message"]) for p in json.loads(result.stdout)["problems"]}
    expected = {(section, "is required but missing") for section in TO_WRITE}
    expected |= {(f"visits[{i}].{key}", "is required but missing") for i in range(3) for key in ("reference", "day")}
    assert problems == expected


def test_a_dictionary_round_trips_through_the_protocol(tmp_path: Path) -> None:
    """from-redcap, the trial-level sections written, to-redcap: every mapped column comes back as it was."""
    draft = _from_redcap(tmp_path, SMALL, EVENTS)
    y = YAML(typ="safe", pure=True)
    complete = _complete(draft, y.load((DATA / "small_trial_rest.yaml").read_text(encoding="utf-8")))
    checked = _run("check", str(complete))
    assert checked.exit_code == 0, checked.output
    out, events = tmp_path / "back.csv", tmp_path / "back_events.csv"
    result = _run("to-redcap", str(complete), "--output", str(out), "--instrument-event-mapping", str(events))
    assert result.exit_code == 0, result.output
    before, after = _rows(SMALL.read_text(encoding="utf-8")), _rows(out.read_text(encoding="utf-8"))
    assert list(after[0]) == list(HEADERS)
    # The record id is trialwright's participant id (listed as not mapped, below); every other row comes back.
    assert after[0]["Variable / Field Name"] == "participant_id"
    assert [{c: r[c] for c in MAPPED} for r in after[1:]] == [{c: r[c] for c in MAPPED} for r in before[1:]]
    assert events.read_text(encoding="utf-8") == EVENTS.read_text(encoding="utf-8")


def test_the_small_trial_draft_declares_each_construct_as_the_protocol_does(tmp_path: Path) -> None:
    y = YAML(typ="safe", pure=True)
    doc = y.load(_from_redcap(tmp_path, SMALL, EVENTS).read_text(encoding="utf-8"))
    fields = {(form["id"], f["id"]): f for form in doc["forms"] for f in form["fields"]}
    assert fields[("enrolment", "age")] == {
        "id": "age",
        "redcap_name": "age",
        "label": "Age at enrolment",
        "type": "integer",
        "hard_limits": {"min": 18, "max": 90},
        "help": "years",
    }
    assert fields[("vitals", "weight")]["type"] == "decimal" and "redcap_name" not in fields[("vitals", "weight")]
    assert fields[("vitals", "bmi")]["derived"] == {
        "kind": "formula",
        "expression": "weight/((height/100)*(height/100))",
        "missing": "refuse",
    }
    assert fields[("vitals", "bmi")]["decimals"] == 1
    # REDCap's sum() and mean() leave blank values out: the values present, at least one.
    assert fields[("qol", "total")]["derived"] == {
        "kind": "sum",
        "fields": ["q1", "q2", "q3"],
        "missing": {"min_present": 1, "prorate": False},
    }
    assert fields[("labs", "neutrophil_pct")]["derived"]["expression"] == "neutrophils / wbc * 100"
    assert fields[("enrolment", "comorbid")]["type"] == "multi_choice"
    assert fields[("enrolment", "comorbid")]["choices"][2] == {
        "code": "3",
        "label": "COPD, asthma or other lung disease",
    }
    assert fields[("enrolment", "comorbid")]["required"] is False
    assert fields[("enrolment", "comorbid_other")]["multiline"] is True
    assert fields[("enrolment", "pregnant")]["not_applicable_allowed"] is True  # it had branching logic
    assert doc["visits"] == [
        {"id": "baseline", "name": "Baseline", "forms": ["enrolment", "vitals", "qol", "labs"]},
        {"id": "day7", "name": "Day7", "forms": ["vitals", "qol"]},
        {"id": "day28", "name": "Day28", "forms": ["qol"]},
    ]


#: Each construct that does not map, in tests/data/redcap/unmapped_dictionary.csv (and its event mapping):
#: (variable, column, a word of the reason).
UNMAPPED = [
    ("study_id", "Variable / Field Name", "participant id"),
    ("intro", "Field Type", "descriptive"),
    ("consent_scan", "Field Type", "file upload"),
    ("pain_vas", "Field Type", "slider"),
    ("site_lookup", "Field Type", "SQL"),
    ("ward", "Field Type", "drop-down"),
    ("alive", "Field Type", "true/false"),
    ("email", "Text Validation Type OR Show Slider Number", "no rule"),
    ("visit_date", "Text Validation Type OR Show Slider Number", "D-M-Y"),
    ("visit_date", "Text Validation Min", "hard limits"),
    ("visit_date", "Text Validation Max", "hard limits"),
    ("hb", "Text Validation Type OR Show Slider Number", "exactly 2 decimal places"),
    ("hb", "Section Header", "section headers"),
    ("initials", "Identifier?", "deidentification.identifiers"),
    ("initials", "Custom Alignment", "layout"),
    ("initials", "Question Number (surveys only)", "surveys"),
    ("initials", "Field Annotation", "action tags"),
    ("rank_a", "Matrix Group Name", "matrix"),
    ("rank_a", "Matrix Ranking?", "ranked"),
    ("followup_ok", "Branching Logic (Show field only if...)", "show-if"),
    ("calc_power", "Choices, Calculations, OR Slider Labels", "not arithmetic"),
    ("calc_if", "Choices, Calculations, OR Slider Labels", "computes with as numbers"),
    ("calc_if", "Choices, Calculations, OR Slider Labels", "not arithmetic"),
    ("calc_days", "Choices, Calculations, OR Slider Labels", "not arithmetic"),
    ("calc_event", "Choices, Calculations, OR Slider Labels", "another event"),
    ("calc_checkbox", "Choices, Calculations, OR Slider Labels", "checkbox option"),
    ("calc_unrounded", "Choices, Calculations, OR Slider Labels", "declare decimals"),
    ("screen_b", "Form Name", "left out"),
    ("day7_arm_2", "arm_num", "one visit schedule"),
]


def test_every_construct_that_does_not_map_is_listed_with_its_column_and_reason(tmp_path: Path) -> None:
    result = _run("from-redcap", str(DATA / "unmapped_dictionary.csv"), "--instrument-event-mapping",
                  str(DATA / "unmapped_events.csv"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["unmapped"]
    assert [(u["variable"], u["column"]) for u in listed] == [(v, c) for v, c, _ in UNMAPPED]
    for u, (_, _, word) in zip(listed, UNMAPPED, strict=True):
        assert word in u["reason"], u
    # Printed without --json too, one line each, and written at the head of the draft.
    said = _run("from-redcap", str(DATA / "unmapped_dictionary.csv"), "--instrument-event-mapping",
                str(DATA / "unmapped_events.csv"), "--output", str(tmp_path / "d.yaml"))  # fmt: skip
    assert f"Not mapped ({len(UNMAPPED)}):" in said.output
    head = (tmp_path / "d.yaml").read_text(encoding="utf-8")
    assert "#   calc_power, Choices, Calculations, OR Slider Labels: '[hb]^2':" in head


def test_a_calculation_that_does_not_map_leaves_a_derivation_check_refuses(tmp_path: Path) -> None:
    draft = _from_redcap(tmp_path, DATA / "unmapped_dictionary.csv", None)
    problems = json.loads(_run("check", str(draft), "--json").stdout)["problems"]
    said = {p["path"]: p["message"] for p in problems if p["path"].startswith("forms")}
    assert any("unknown derivation 'redcap_calculation_to_write'" in m for m in said.values())
    assert any("a derived decimal field needs decimals" in m for m in said.values())


def test_the_first_protocol_round_trip_is_stable(tmp_path: Path) -> None:
    """to-redcap of the first trial, from-redcap, the protocol-only facts written back, to-redcap: the same file."""
    first, events = tmp_path / "first.csv", tmp_path / "first_events.csv"
    assert _run("to-redcap", str(FIRST_PROTOCOL), "--output", str(first), "--instrument-event-mapping",
                str(events)).exit_code == 0  # fmt: skip
    draft = _from_redcap(tmp_path, first, events)
    y = YAML(typ="safe", pure=True)
    source = y.load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    # What no dictionary holds: the trial-level sections, the visits' schedule, and each field's protocol-only
    # facts (derivations REDCap cannot compute, units, soft limits, codes, translations...).
    # The field note is the unit and help together: the user declares which part is the unit.
    drafted = {"id", "redcap_name", "label", "type", "choices", "hard_limits", "required", "multiline",
               "not_applicable_allowed", "derived", "decimals"}  # fmt: skip
    # A calculation is a number: whether an integer or a decimal is the protocol's to say.
    kept = {"derived", "decimals", "type"}
    fields = {
        (form["id"], f["id"]): {
            "help": None,  # unless the field has help of its own
            **{k: v for k, v in f.items() if k not in drafted or ("derived" in f and k in kept)},
            "choice_translations": {str(c["code"]): c.get("translations") for c in f.get("choices", [])},
        }
        for form in source["forms"] for f in form["fields"]
    }  # fmt: skip
    forms = {form["id"]: {k: v for k, v in form.items() if k not in {"id", "fields"}} for form in source["forms"]}
    rest = {k: v for k, v in source.items() if k not in {"forms", "format"}}
    again = tmp_path / "again.csv"
    result = _run("to-redcap", str(_complete(draft, rest, fields, forms)), "--output", str(again))
    assert result.exit_code == 0, result.output
    assert again.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")


def test_to_redcap_writes_what_the_api_metadata_answers(tmp_path: Path) -> None:
    from tests.trialfixtures import make_trial
    from trialwright.services.redcap import project_dictionary

    url = f"sqlite:///{tmp_path / 'trial.db'}"
    trial = make_trial(url)
    result = _run("to-redcap", "--database", url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == list(project_dictionary(trial.engine).rows)
    printed = _run("to-redcap", "--database", url).stdout
    assert _rows(printed)[1]["Variable / Field Name"] == project_dictionary(trial.engine).rows[1]["field_name"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "the file is empty"),
        ('"Variable / Field Name","Form Name"\nrecord_id,enrolment\n', "the header must be REDCap's 18 columns"),
        (",".join(f'"{h}"' for h in HEADERS) + "\nrecord_id,enrolment,,text\n", "row 2 has 4 cells, not 18"),
        (",".join(f'"{h}"' for h in HEADERS) + "\nRecord ID,enrolment" + "," * 16 + "\n", "row 2, Variable"),
    ],
)
def test_a_file_that_is_no_dictionary_is_refused_naming_the_row(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "dictionary.csv"
    path.write_text(text, encoding="utf-8")
    result = _run("from-redcap", str(path))
    assert result.exit_code == 1 and said in result.output and "Traceback" not in result.output


def test_exit_codes_for_a_missing_file_and_an_existing_output(tmp_path: Path) -> None:
    assert _run("from-redcap", str(tmp_path / "nope.csv")).exit_code == 3
    taken = tmp_path / "taken.yaml"
    taken.write_text("mine", encoding="utf-8")
    result = _run("from-redcap", str(SMALL), "--output", str(taken))
    assert result.exit_code == 2 and "exists" in result.output and taken.read_text(encoding="utf-8") == "mine"


def test_check_refuses_two_fields_under_one_redcap_name(tmp_path: Path) -> None:
    from tests.spec.protocol.conftest import mutated_text

    def clash(doc: Any) -> None:
        fields = doc["forms"][0]["fields"]
        fields[0]["redcap_name"] = f"{doc['forms'][0]['id']}_{fields[1]['id']}"  # the second field's own name
        fields[2]["redcap_name"] = "participant_id"

    path = tmp_path / "clash.yaml"
    path.write_text(mutated_text(clash), encoding="utf-8")
    problems = json.loads(_run("check", str(path), "--json").stdout)["problems"]
    said = {p["path"]: p["message"] for p in problems}
    assert said == {
        "forms[0].fields[1].id": "REDCap name demographics_enrolled_on is also demographics.birth_date's; set "
        "redcap_name to tell them apart",
        "forms[0].fields[2].redcap_name": "REDCap name participant_id is the record id or a form's status column in "
        "REDCap; set redcap_name",
    }


def test_a_name_with_and_without_its_form_prefix_keeps_both_names() -> None:
    from trialwright.domain.redcap_dictionary import draft, read_dictionary

    def row(name: str) -> str:
        return f"{name},vitals,,text,{name},,,integer,,,,,y,,,,,"

    text = ",".join(f'"{h}"' for h in HEADERS) + "\n" + "\n".join(map(row, ["record_id", "vitals_weight", "weight"]))
    fields = draft(read_dictionary(text)).forms[0]["fields"]
    assert [(f["id"], f.get("redcap_name")) for f in fields] == [
        ("vitals_weight", "vitals_weight"),
        ("weight", "weight"),
    ]


def test_a_name_whose_short_form_is_an_export_column_keeps_its_prefix() -> None:
    """``weekly_visit_date`` would become ``visit_date``, a column every form's export table already has."""
    from trialwright.domain.redcap_dictionary import draft, read_dictionary

    def row(name: str) -> str:
        return f"{name},weekly,,text,{name},,,date_ymd,,,,,y,,,,,"

    names = ["record_id", "weekly_visit_date", "weekly_site", "weekly_form_state", "weekly_seen"]
    text = ",".join(f'"{h}"' for h in HEADERS) + "\n" + "\n".join(map(row, names))
    fields = draft(read_dictionary(text)).forms[0]["fields"]
    assert [f["id"] for f in fields] == ["weekly_visit_date", "weekly_site", "weekly_form_state", "seen"]


def test_without_output_the_draft_goes_to_stdout_and_the_list_to_stderr() -> None:
    result = _run("from-redcap", str(SMALL))
    assert result.exit_code == 0
    doc = YAML(typ="safe", pure=True).load(result.stdout)
    assert [f["id"] for f in doc["forms"]] == ["enrolment", "vitals", "qol", "labs"] and "visits" not in doc
    assert "Not mapped (3):" in result.stderr and "Not mapped" not in result.stdout.split("format: 2")[1]
    assert "Still to write: trial, sites," in result.stderr and ", visits." in result.stderr


def test_to_redcap_writes_both_files_or_neither(tmp_path: Path) -> None:
    out, taken = tmp_path / "dictionary.csv", tmp_path / "events.csv"
    taken.write_text("mine", encoding="utf-8")
    result = _run("to-redcap", str(FIRST_PROTOCOL), "--output", str(out), "--instrument-event-mapping", str(taken))
    assert result.exit_code == 2 and "exists" in result.output
    assert not out.exists() and taken.read_text(encoding="utf-8") == "mine"
