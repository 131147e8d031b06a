"""Walk 4: mistakes a new user could make in walk4.yaml, each put through `trialwright protocol check`.

Usage (from the repository root): PYTHONPATH=src python tests/data/walks/walk4.refusals.py
Prints each refusal, to read whether it names the file, line, field and rule (walk4.findings.md).
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

src = (Path(__file__).parent / "walk4.yaml").read_text()
out_dir = Path(tempfile.mkdtemp())
M = [
    ("block size 3", "block_sizes: [2, 4]", "block_sizes: [3, 4]"),
    (
        "NI margin key on estimand",
        "      estimator: ancova\n      sensitivity:\n        - {estimator: ancova, population: per_protocol}",
        "      non_inferiority_margin: 0.5\n      estimator: ancova\n      sensitivity:\n"
        "        - {estimator: ancova, population: per_protocol}",
    ),
    (
        "single but masked investigator",
        "  blinding: single\n  description:",
        "  blinding: single\n  masked: [participant, investigator]\n  description:",
    ),
    ("assent age_field not years", "age_field: age, form_versions", "age_field: acq_screen, form_versions"),
    ("assent without consent_age", ", consent_age: 18}", "}"),
    (
        "ancova without baseline",
        "at: week12, baseline: baseline, change_from_baseline: true}\n      intercurrent_events:\n"
        "        - {event: withdrawal, strategy: treatment_policy}\n        - {event: treatment_discontinuation",
        "at: week12}\n      intercurrent_events:\n"
        "        - {event: withdrawal, strategy: treatment_policy}\n        - {event: treatment_discontinuation",
    ),
    ("no_intervention arm in single-blind", "    role: active_comparator", "    role: no_intervention"),
    (
        "mmrm with withdrawal treatment_policy",
        "        - {event: withdrawal, strategy: hypothetical}\n        - {event: death, strategy: hypothetical}",
        "        - {event: withdrawal, strategy: treatment_policy}\n        - {event: death, strategy: hypothetical}",
    ),
    ("stratify age without cut points", "{id: age_band, field: age, cut_points: [12]}", "{id: age_band, field: age}"),
    (
        "per_protocol exclude_when on an integer field",
        "exclude_when: [adherence.poor_adherence]",
        "exclude_when: [adherence.doses_counted]",
    ),
    ("amendment version not the file's", '    version: "1.1"\n    reason', '    version: "1.2"\n    reason'),
    ("mmrm at not in visits", "at: week12, visits: [week4, week8, week12]", "at: week12, visits: [week4, week8]"),
    ("binary event value not a code", 'event_values: ["True"]', 'event_values: ["yes"]'),
    (
        "eligibility ages beyond registered maximum",
        "rule: {field: age, between: [6, 17]}",
        "rule: {field: age, between: [6, 18]}",
    ),
    (
        "deidentification age_field not in demographics.age",
        "age_field: screening.age",
        "age_field: screening.acq_screen",
    ),
    (
        "visit windows overlap",
        "    day: 14\n    window: {before: 2, after: 2}",
        "    day: 14\n    window: {before: 2, after: 12}",
    ),
]
for name, a, b in M:
    if a not in src:
        raise SystemExit(f"{name}: the fragment to change is no longer in walk4.yaml")
    f = out_dir / (re.sub("[^a-z0-9]+", "_", name.lower()) + ".yaml")
    f.write_text(src.replace(a, b, 1))
    r = subprocess.run(
        [sys.executable, "-m", "trialwright", "protocol", "check", str(f)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    out = (r.stdout + r.stderr).strip().splitlines()
    print(f"## {name} (rc {r.returncode})")
    print("\n".join(line for line in out if not line.startswith("Note:"))[:900])
    print()
