"""Protocol fragments that declare derivations, and the first protocol with them added at baseline.

SOFA, after Vincent et al., Intensive Care Med 1996;22:707-710 (the table as reprinted in Singer et al.,
JAMA 2016;315:801, Table 1): respiration PaO2/FiO2 mmHg >=400: 0, <400: 1, <300: 2, <200: 3, <100: 4;
coagulation platelets x10^3/uL >=150: 0, <150: 1, <100: 2, <50: 3, <20: 4; liver bilirubin mg/dL <1.2: 0,
1.2-1.9: 1, 2.0-5.9: 2, 6.0-11.9: 3, >12.0: 4; cardiovascular MAP >=70: 0, MAP <70: 1, dopamine <=5 or
dobutamine (any dose): 2, dopamine >5 or epinephrine <=0.1 or norepinephrine <=0.1: 3, dopamine >15 or
epinephrine >0.1 or norepinephrine >0.1: 4 (ug/kg/min); CNS Glasgow coma score 15: 0, 13-14: 1, 10-12:
2, 6-9: 3, <6: 4; renal creatinine mg/dL <1.2: 0, 1.2-1.9: 1, 2.0-3.4: 2, 3.5-4.9 or urine <500 mL/d: 3,
>5.0 or urine <200 mL/d: 4.

What the bands cannot say, and how the fragment simplifies it (a protocol would state the same):
respiration 3 and 4 need respiratory support as well as the ratio; here the ratio alone is banded. The
cardiovascular row mixes MAP and drug doses, so the site records the row's category as a choice and the
code gives the points. The published liver and renal rows, written to one decimal, leave 11.9-12.0 and
4.9-5.0 unassigned; the bands take each lower bound as inclusive and each upper bound as exclusive
(bilirubin [6.0, 12.0) scores 3, 12.0 scores 4).

EQ-5D-5L index, value set for England: Devlin NJ, Shah KK, Feng Y, Mulhern B, van Hout B. Valuing
health-related quality of life: an EQ-5D-5L value set for England. Health Econ 2018;27:7-22 (index = 1
minus one decrement per dimension level; no other constant). The same coefficients are the England column
of the eq5d R package (Morton F, Nijjar JS; data-raw/VT.csv), whose tests give the published example
states used in test_declared.py.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML

from tests.conftest import FIRST_PROTOCOL

SOFA_FORM = """
id: sofa
name: SOFA (Vincent et al. 1996)
fields:
  - {id: platelets, label: Platelets, type: decimal, unit: 10^3/uL, hard_limits: {min: 0, max: 2000}}
  - {id: bilirubin, label: Bilirubin, type: decimal, unit: mg/dL, decimals: 1, hard_limits: {min: 0, max: 50}}
  - id: cardiovascular
    label: Hypotension and vasopressors (ug/kg/min, at least 1 h)
    type: choice
    choices:
      - {code: map_ge_70, label: MAP >= 70 mmHg}
      - {code: map_lt_70, label: MAP < 70 mmHg}
      - {code: dopamine_le_5_or_dobutamine, label: Dopamine <= 5 or dobutamine (any dose)}
      - {code: dopamine_gt_5_or_adrenaline_le_01, label: Dopamine > 5 or epinephrine/norepinephrine <= 0.1}
      - {code: dopamine_gt_15_or_adrenaline_gt_01, label: Dopamine > 15 or epinephrine/norepinephrine > 0.1}
  - {id: gcs, label: Glasgow coma score, type: integer, hard_limits: {min: 3, max: 15}}
  - {id: creatinine, label: Creatinine, type: decimal, unit: mg/dL, decimals: 1, hard_limits: {min: 0, max: 30}}
  - {id: urine_output, label: Urine output, type: integer, unit: mL/day, required: false,
     hard_limits: {min: 0, max: 20000}}
  - id: respiration
    label: SOFA respiration
    type: integer
    derived:
      kind: bands
      input: blood_gas.pf_ratio   # a named derivation on another form of the visit
      missing: refuse
      bands:
        - {ge: 400, points: 0}
        - {ge: 300, lt: 400, points: 1}
        - {ge: 200, lt: 300, points: 2}
        - {ge: 100, lt: 200, points: 3}
        - {lt: 100, points: 4}
  - id: coagulation
    label: SOFA coagulation
    type: integer
    derived:
      kind: bands
      input: platelets
      missing: refuse
      bands:
        - {ge: 150, points: 0}
        - {ge: 100, lt: 150, points: 1}
        - {ge: 50, lt: 100, points: 2}
        - {ge: 20, lt: 50, points: 3}
        - {lt: 20, points: 4}
  - id: liver
    label: SOFA liver
    type: integer
    derived:
      kind: bands
      input: bilirubin
      missing: refuse
      bands:
        - {lt: 1.2, points: 0}
        - {ge: 1.2, lt: 2.0, points: 1}
        - {ge: 2.0, lt: 6.0, points: 2}
        - {ge: 6.0, lt: 12.0, points: 3}
        - {ge: 12.0, points: 4}
  - id: cardiovascular_points
    label: SOFA cardiovascular
    type: integer
    derived:
      kind: codes
      input: cardiovascular
      missing: refuse
      points: {map_ge_70: 0, map_lt_70: 1, dopamine_le_5_or_dobutamine: 2, dopamine_gt_5_or_adrenaline_le_01: 3,
               dopamine_gt_15_or_adrenaline_gt_01: 4}
  - id: cns
    label: SOFA central nervous system
    type: integer
    derived:
      kind: bands
      input: gcs   # whole numbers 3-15 (its hard limits): no gap between 12 and 13
      missing: refuse
      bands:
        - {ge: 15, points: 0}
        - {ge: 13, le: 14, points: 1}
        - {ge: 10, le: 12, points: 2}
        - {ge: 6, le: 9, points: 3}
        - {le: 5, points: 4}
  - id: renal_creatinine
    label: SOFA renal, by creatinine
    type: integer
    derived:
      kind: bands
      input: creatinine
      missing: refuse
      bands:
        - {lt: 1.2, points: 0}
        - {ge: 1.2, lt: 2.0, points: 1}
        - {ge: 2.0, lt: 3.5, points: 2}
        - {ge: 3.5, lt: 5.0, points: 3}
        - {ge: 5.0, points: 4}
  - id: renal_urine
    label: SOFA renal, by urine output
    type: integer
    derived:
      kind: bands
      input: urine_output
      missing: refuse
      bands:
        - {ge: 500, points: 0}
        - {ge: 200, lt: 500, points: 3}
        - {lt: 200, points: 4}
  - id: renal
    label: SOFA renal (the worse of creatinine and urine output)
    type: integer
    derived: {kind: max, fields: [renal_creatinine, renal_urine], missing: {min_present: 1}}
  - id: sofa_total
    label: SOFA total
    type: integer
    derived:
      kind: sum
      fields: [respiration, coagulation, liver, cardiovascular_points, cns, renal]
      missing: refuse
  - id: organ_failures
    label: Organs failing (SOFA 3 or 4)
    type: integer
    derived:
      kind: count
      fields: [respiration, coagulation, liver, cardiovascular_points, cns, renal]
      when: {ge: 3}
      missing: refuse
"""

# The England value set (Devlin et al. 2018), as the decrement per level; level 1 is 0 in every dimension.
EQ5D_FORM = """
id: eq5d
name: EQ-5D-5L
fields:
  - {id: mobility, label: Mobility, type: choice, choices: &levels [{code: "1", label: No problems},
     {code: "2", label: Slight}, {code: "3", label: Moderate}, {code: "4", label: Severe},
     {code: "5", label: Unable or extreme}]}
  - {id: self_care, label: Self-care, type: choice, choices: *levels}
  - {id: usual_activities, label: Usual activities, type: choice, choices: *levels}
  - {id: pain_discomfort, label: Pain / discomfort, type: choice, choices: *levels}
  - {id: anxiety_depression, label: Anxiety / depression, type: choice, choices: *levels}
  - id: index
    label: EQ-5D-5L index (England)
    type: decimal
    decimals: 3
    derived:
      kind: value_set
      source: Devlin et al., Health Econ 2018;27:7-22 (England)
      constant: 1
      missing: refuse
      dimensions:
        - {input: mobility, decrements: {1: 0, 2: 0.058, 3: 0.076, 4: 0.207, 5: 0.274}}
        - {input: self_care, decrements: {1: 0, 2: 0.050, 3: 0.080, 4: 0.164, 5: 0.203}}
        - {input: usual_activities, decrements: {1: 0, 2: 0.050, 3: 0.063, 4: 0.162, 5: 0.184}}
        - {input: pain_discomfort, decrements: {1: 0, 2: 0.063, 3: 0.084, 4: 0.276, 5: 0.335}}
        - {input: anxiety_depression, decrements: {1: 0, 2: 0.078, 3: 0.104, 4: 0.285, 5: 0.289}}
"""

Mutation = Callable[[Any], None]


def _load(text: str) -> Any:
    return YAML(typ="rt").load(text)


def with_forms(*forms: str, mutate: Mutation | None = None) -> str:
    """The first protocol's text with ``forms`` (YAML texts) appended and collected at baseline, then
    ``mutate`` applied to the round-trip document (to break a declaration on purpose)."""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    document = yaml.load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    for text in forms:
        form = _load(text)
        document["forms"].append(form)
        document["visits"][0]["forms"].append(form["id"])
    if mutate is not None:
        mutate(document)
    document.pop("languages", None)  # English only: the forms and fields added here carry no Persian
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def form_of(document: Any, form_id: str) -> Any:
    """The form with this id in a round-trip document."""
    return next(f for f in document["forms"] if f["id"] == form_id)


def field_of(document: Any, form_id: str, field_id: str) -> Any:
    """The field with this id on that form."""
    return next(f for f in form_of(document, form_id)["fields"] if f["id"] == field_id)
