"""Loading the same protocol text again reads its YAML once, and gives each caller a protocol of its own.

Every request reads the trial's stored protocol text and every test builds its trial from a file: parsing
YAML with the line of every key is most of a load's time, so ``load_protocol_text`` remembers what a text
parses to. What it remembers is the text's plain data, never a protocol object: each load validates its own
copy, so a caller that changes what it got (a list inside a frozen model is still a list) changes nobody
else's protocol, and a text that fails still fails every time, with the same lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from trialwright.protocol import ProtocolError, load_protocol_text, loader

FIRST = (Path(__file__).parents[3] / "protocols" / "IRCT20190101042197N2.yaml").read_text(encoding="utf-8")


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts ruamel is asked to parse from now on."""
    seen: list[str] = []
    real = YAML.load

    def load(self: YAML, stream: object) -> object:
        seen.append(str(stream))
        return real(self, stream)

    monkeypatch.setattr(YAML, "load", load)
    return seen


def test_the_same_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = FIRST + "\n# loaded twice by this spec\n"
    seen = _parses(monkeypatch)
    first = load_protocol_text(text, source="a.yaml")
    second = load_protocol_text(text, source="b.yaml")
    assert seen.count(text) == 1
    assert first.protocol == second.protocol and first.sha256 == second.sha256
    assert (first.source, second.source) == ("a.yaml", "b.yaml")


def test_each_load_gets_a_protocol_of_its_own() -> None:
    text = FIRST + "\n# changed in place by this spec\n"
    first = load_protocol_text(text)
    second = load_protocol_text(text)
    assert first.protocol is not second.protocol
    first.protocol.forms.clear()  # frozen models still hold plain lists
    assert second.protocol.forms and load_protocol_text(text).protocol.forms


def test_what_one_load_does_to_its_data_reaches_no_other_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation may change the parsed data in place (``read_format_1`` rewrites an old file's sections): each
    load gets the parsed data afresh, never the data an earlier load changed."""
    text = FIRST + "\n# read twice, changed in place the first time\n"
    real = loader.read_format_1

    def renaming(data: dict[str, Any]) -> None:
        real(data)
        data["trial"]["titles"]["short"] = "changed in place by the first load"

    monkeypatch.setattr(loader, "read_format_1", renaming)
    changed = load_protocol_text(text)
    monkeypatch.setattr(loader, "read_format_1", real)
    again = load_protocol_text(text)
    assert changed.protocol.trial.titles.short == "changed in place by the first load"
    assert again.protocol.trial.titles.short == "Exosomes in COVID-19 ARDS"
    assert again.protocol == load_protocol_text(FIRST).protocol


def test_a_text_that_fails_fails_every_time_with_its_line() -> None:
    text = FIRST.replace("\nsites:", "\nsitez:", 1)
    for _ in range(2):
        with pytest.raises(ProtocolError) as raised:
            load_protocol_text(text, source="broken.yaml")
        assert "unknown key 'sitez'" in str(raised.value)
        line = FIRST.split("\n").index("sites:") + 1
        assert f"broken.yaml:{line}: sitez:" in str(raised.value)


def test_malformed_yaml_fails_every_time_with_its_line() -> None:
    text = "format: 2\ntrial: [unclosed\n"
    messages = set()
    for _ in range(2):
        with pytest.raises(ProtocolError) as raised:
            load_protocol_text(text, source="bad.yaml")
        messages.add(str(raised.value))
    assert len(messages) == 1 and "malformed YAML" in messages.pop()
