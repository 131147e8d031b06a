"""Building blocks shared by every part of the protocol model.

Every protocol model is frozen (a loaded protocol never changes in memory) and forbids unknown keys, so a
typo in the YAML file is an error, not a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

__all__ = [
    "FREE_TEXT",
    "LONGEST_TEXT",
    "SHORT_TEXT",
    "Code",
    "Duration",
    "Identifier",
    "ProtocolModel",
    "Range",
    "Translations",
    "a_kind",
    "stored_text",
]

#: Text limits, in characters (``trialwright.domain.text``): one-line text, free text, and the longest
#: limit a protocol may declare for a text field or a preparation attribute.
SHORT_TEXT = 200
FREE_TEXT = 2_000
LONGEST_TEXT = 10_000

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}$")
_DURATION = re.compile(r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$")


def a_kind(kind: object) -> str:
    """A field's kind with its article, as a check's message says it: ``an integer``, ``a date``."""
    word = str(getattr(kind, "value", kind))
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


class ProtocolModel(BaseModel):
    """Base of every protocol model: frozen, unknown keys refused, every field documented."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError("must be a lower-case identifier: a letter, then letters, digits or _")
    return value


def _code(value: str) -> str:
    if not _CODE.match(value):
        raise ValueError("must be 2 to 8 upper-case letters or digits, starting with a letter")
    return value


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not an ISO 8601 duration in whole amounts, such as P18Y, P7D or PT12H")
    if value.rstrip("T") == "P":
        raise ValueError("an ISO 8601 duration names at least one amount, e.g. P7D or PT12H")
    if value.endswith("T"):
        raise ValueError("an ISO 8601 duration's T is followed by hours, minutes or seconds, e.g. PT12H")
    return value


#: A machine name used in references (`pf_ratio`, `day7`, `labs`).
Identifier = Annotated[str, AfterValidator(_identifier)]
#: A short upper-case code shown to people (site `RAZ`, arm `EXO`).
Code = Annotated[str, AfterValidator(_code)]
#: An ISO 8601 duration in whole amounts (`P18Y`, `P7D`, `PT12H`), as SDTM writes durations.
Duration = Annotated[str, AfterValidator(_duration)]
#: Texts in other languages, keyed by language code (`fa`).
Translations = dict[str, str]


class Range(ProtocolModel):
    """An inclusive numeric range; either end may be open."""

    min: float | None = Field(default=None, description="Lowest allowed value (inclusive); none = open.")
    max: float | None = Field(default=None, description="Highest allowed value (inclusive); none = open.")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not be above max ({self.max:g})")
        return self

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the range, ends included."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def within(self, other: Range) -> bool:
        """Whether this range lies inside ``other``."""
        lo_ok = other.min is None or (self.min is not None and self.min >= other.min)
        hi_ok = other.max is None or (self.max is not None and self.max <= other.max)
        return lo_ok and hi_ok


def stored_text(info: ValidationInfo) -> bool:
    """Whether a protocol text read back from a trial database is being validated (``load_protocol_text(...,
    stored=True)``): it is read as its engine read it, the rules added since refusing what they guard instead."""
    return bool(isinstance(info.context, dict) and info.context.get("stored"))
