"""Benchmark: the analysis' reading of form values (issue 23 item 4), against the parse alone and the reading before.

    .venv/bin/python bench/analysis_values.py --database sqlite:///s1500.db [--runs 5]
    .venv/bin/python bench/analysis_values.py --smoke    (a trial of 6 screened simulated on SQLite, one run: CI)

On a trial made by ``trialwright simulate`` (or ``bench/scale.py``'s build), reads every form record's visit
record, form and stored JSON once, then, alternately in one process, CPU seconds (``time.process_time``) of:

- the raw baseline: ``json.loads`` of each record, nothing else;
- the reading before ``FormValuesReader`` (main before issue 23 item 4's analysis change): ``_stored_value`` called
  per value, the treatment's key compared on every value;
- ``FormValuesReader`` (what ``analysis_data`` runs now).

It prints each run and the ratio of each to the raw baseline, and checks the reader's values equal the definition's
(a ``StoredValue`` per value and ``_value`` of it; exits 1 if not).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from _common import simulated_smoke_trial  # (importing it puts src on sys.path)
from sqlalchemy import create_engine, select

from trialwright.domain.forms import StoredValue
from trialwright.domain.treatment import treatment_given
from trialwright.protocol import Protocol
from trialwright.protocol.analysis_plan import BelowLimitRule
from trialwright.services.analysis_values import FormValuesReader, _stored_value, _value
from trialwright.services.trial import current_protocol
from trialwright.store.data_tables import form_records, visit_records


def raw(rows: list[tuple[int, str, str]]) -> None:
    for _, _, text in rows:
        json.loads(text)


def definition(
    protocol: Protocol, rule: BelowLimitRule, visit_of: dict[int, Any], rows: list[tuple[int, str, str]]
) -> Any:
    declared = {f.id: {x.id: (f"{f.id}.{x.id}", x.type) for x in f.fields} for f in protocol.forms}
    plan = protocol.analysis_plan
    given_key = (plan.treatment.visit, f"{plan.treatment.form}.{plan.treatment.given_field}") if (
        plan and plan.treatment) else None  # fmt: skip
    values: dict[str, dict[str, dict[str, Any]]] = {}
    given: set[str] = set()
    for record_id, form_id, text in rows:
        pid, visit_id = visit_of[record_id]
        slot = values.setdefault(pid, {}).setdefault(visit_id, {})
        fields = declared.get(form_id, {})
        for name, stored in json.loads(text).items():
            known = fields.get(name)
            if known is not None:
                key, kind = known
                slot[key] = _value(StoredValue.from_json(stored), kind, rule)
                if (visit_id, key) == given_key and treatment_given(StoredValue.from_json(stored)):
                    given.add(pid)
    return values, given


def before(protocol: Protocol, rule: BelowLimitRule, visit_of: dict[int, Any], rows: list[tuple[int, str, str]]) -> Any:
    declared = {f.id: {x.id: (f"{f.id}.{x.id}", x.type) for x in f.fields} for f in protocol.forms}
    plan = protocol.analysis_plan
    given_key = (plan.treatment.visit, f"{plan.treatment.form}.{plan.treatment.given_field}") if (
        plan and plan.treatment) else None  # fmt: skip
    values: dict[str, dict[str, dict[str, Any]]] = {}
    given: set[str] = set()
    for record_id, form_id, text in rows:
        pid, visit_id = visit_of[record_id]
        slot = values.setdefault(pid, {}).setdefault(visit_id, {})
        fields = declared.get(form_id, {})
        for name, stored in json.loads(text).items():
            known = fields.get(name)
            if known is not None:
                key, kind = known
                slot[key] = _stored_value(stored, kind, rule)
                if (visit_id, key) == given_key and treatment_given(StoredValue.from_json(stored)):
                    given.add(pid)
    return values, given


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", help="a trial made by trialwright simulate")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a tiny simulated trial, one run (CI)")
    args = parser.parse_args()
    if args.smoke:
        with simulated_smoke_trial() as url:
            measure(url, 1)
        return
    if not args.database:
        parser.error("--database is required (or --smoke)")
    measure(args.database, args.runs)


def measure(url: str, runs: int) -> None:
    engine = create_engine(url)
    protocol = current_protocol(engine).protocol
    rule = protocol.analysis_plan.below_limit if protocol.analysis_plan else BelowLimitRule.LIMIT_OVER_SQRT2
    with engine.connect() as conn:
        visit_of = {r.id: (r.participant_id, r.visit_id) for r in conn.execute(select(visit_records))}
        rows = [(r[0], r[1], r[2]) for r in conn.execute(
            select(form_records.c.visit_record_id, form_records.c.form_id, form_records.c.form_values))]  # fmt: skip

    def reader() -> Any:
        r = FormValuesReader(protocol, rule, visit_of)
        r.read(rows)
        return r.values, r.given

    steps = {"raw json.loads": lambda: raw(rows), "before (_stored_value)": lambda: before(protocol, rule,
             visit_of, rows), "FormValuesReader": reader}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs + 1):  # the first round warms up
        for name, step in steps.items():
            began = time.process_time()
            step()
            times[name].append(time.process_time() - began)
    base = max(statistics.median(times["raw json.loads"][1:]), 1e-9)
    print(f"{len(rows)} form records, {sum(len(json.loads(t)) for _, _, t in rows)} stored values")
    for name, spent in times.items():
        runs = ", ".join(f"{x:.3f}" for x in spent[1:])
        print(f"{name:<28} CPU s {runs}  median {statistics.median(spent[1:]):.3f}  "
              f"{statistics.median(spent[1:]) / base:.2f}x raw")  # fmt: skip
    if reader() != definition(protocol, rule, visit_of, rows) or before(protocol, rule, visit_of, rows) != reader():
        print("MISMATCH: the reader's values differ from the definition's")
        sys.exit(1)
    print("values equal to the definition's")


if __name__ == "__main__":
    main()
