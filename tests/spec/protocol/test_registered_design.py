"""The registry record's design (``trial.design``) and what the protocol declares must agree, or ``protocol check``
refuses the file naming the file, line, field and rule, every contradiction at once (walk 5: ``blinding: open`` beside
``masking.blinding: double`` and a placebo arm was accepted, and ``protocol show`` printed both blindings).

| ``trial.design``               | the protocol declares                             | refused at                  |
|--------------------------------|---------------------------------------------------|-----------------------------|
| ``blinding: open`` (or single) | ``masking.blinding: double``                      | ``trial.design.blinding``   |
| ``blinding: double``           | ``masking.blinding: triple`` (adds the analyst)   | accepted                    |
| ``placebo: false``             | a ``placebo_comparator`` arm                      | ``trial.design.placebo``    |
| ``placebo: true``              | no placebo (or sham) comparator arm               | ``trial.design.placebo``    |
| ``assignment: crossover``, ... | the engine runs parallel arms only (``parallel``) | ``trial.design.assignment`` |

The first trial is double-blind (``masking.blinding: double``), placebo-controlled, parallel: each row changes it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text


def _design(**values: Any) -> Any:
    def mutate(doc: Any) -> None:
        doc["trial"]["design"].update(values)

    return mutate


def _active_comparator(doc: Any) -> None:
    """The placebo arm made an active comparator (the record still says a placebo is used)."""
    doc["arms"][1]["role"] = "active_comparator"


REFUSED = [
    ("walk 5: registered open, masked double with a placebo arm", _design(blinding="open"), "trial.design.blinding",
     "the registry record says open, but masking.blinding is double: the record and the system's masking must agree",
     "blinding: open"),
    ("registered single, masked double", _design(blinding="single"), "trial.design.blinding",
     "the registry record says single-blind, but masking.blinding is double", "blinding: single"),
    ("no placebo registered beside a placebo_comparator arm", _design(placebo=False), "trial.design.placebo",
     "the registry record says no placebo is used, but arm PBO is a placebo_comparator", "placebo: false"),
    ("a placebo registered with no placebo arm", _active_comparator, "trial.design.placebo",
     "the registry record says a placebo is used, but no arm is a placebo_comparator", "placebo: true"),
    ("a crossover", _design(assignment="crossover"), "trial.design.assignment",
     "'crossover': trialwright runs parallel arms only", "assignment: crossover"),
    ("a factorial design", _design(assignment="factorial"), "trial.design.assignment",
     "'factorial': trialwright runs parallel arms only", "assignment: factorial"),
    ("a single group", _design(assignment="single_group"), "trial.design.assignment",
     "'single_group': trialwright runs parallel arms only", "assignment: single_group"),
    ("parallel in capitals: the word as the SDTM export maps it, never guessed", _design(assignment="Parallel"),
     "trial.design.assignment", "'Parallel': trialwright runs parallel arms only", "assignment: Parallel"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "path", "words", "line"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_registry_design_the_protocol_contradicts_is_refused(
    case: str, mutate: Any, path: str, words: str, line: str
) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    found = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert found, f"{case}: nothing at {path} saying {words!r}; got:\n{caught.value}"
    assert found[0].line is not None
    assert line in text.splitlines()[found[0].line - 1]
    assert f"trial.yaml:{found[0].line}: {path}: " in str(caught.value)


def test_every_contradiction_of_the_record_is_listed_at_once() -> None:
    """A cross-check, not a validator: the blinding, the placebo and the assignment all named in one run."""
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(_design(blinding="open", placebo=False, assignment="crossover")))
    paths = [p.path for p in caught.value.problems]
    assert {"trial.design.blinding", "trial.design.placebo", "trial.design.assignment"} <= set(paths), paths


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        ("the first trial as shipped", _design()),
        ("a placebo registered for a sham comparator", lambda doc: doc["arms"][1].update(role="sham_comparator")),
        ("no placebo, an active comparator", lambda doc: (_design(placebo=False)(doc), _active_comparator(doc))),
    ],
)
def test_a_record_that_agrees_with_the_protocol_is_accepted(case: str, mutate: Any) -> None:
    assert load_protocol_text(mutated_text(mutate)).protocol.trial.design.assignment == "parallel"
