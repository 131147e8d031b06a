"""The registry of derivations a protocol may name, and how a derived field names its inputs.

A derived value (P/F ratio, NEWS2, PRIEST, Brixia total, ...) is computed by the engine, never typed in.
The protocol names the derivation and binds each of its inputs to a field; this module is the one list of
derivation names and their inputs, which the clinical scores (``trialwright.domain.scores``) implement.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from pydantic import Field, model_validator

from trialwright.protocol.base import ProtocolModel

__all__ = ["DERIVATIONS", "DERIVATION_PARAMETERS", "INPUT_TYPES", "OPTIONAL_INPUTS", "Derivation"]

_NEWS2_INPUTS = ("resp_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temperature")

#: Every derivation the engine knows, with the inputs it needs (by role).
DERIVATIONS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "pf_ratio": ("pao2_mmhg", "fio2"),
        "sf_ratio": ("spo2", "fio2"),
        "news2": _NEWS2_INPUTS,
        "news2_band": _NEWS2_INPUTS,
        "priest_score": (*_NEWS2_INPUTS, "age", "sex", "performance_status"),
        "priest_band": (*_NEWS2_INPUTS, "age", "sex", "performance_status"),
        "brixia_total": ("zone_a", "zone_b", "zone_c", "zone_d", "zone_e", "zone_f"),
        "cd4_cd8_ratio": ("cd4", "cd8"),
        "length_of_stay": ("admission", "end"),
        "age_at": ("birth_date", "on_date"),
    }
)

#: Inputs a derivation may be given, and what it does without them. NEWS2 scores SpO2 on scale 2 for a
#: participant whose ``spo2_scale2`` field (a yes/no field, e.g. "target SpO2 88-92% prescribed") is yes,
#: on scale 1 when it is no; without that input every participant is scored on scale 1. PRIEST was
#: derived on scale 1 and takes no such input.
OPTIONAL_INPUTS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {"news2": ("spo2_scale2",), "news2_band": ("spo2_scale2",)}
)

#: The field types an input role must have, where the role's meaning fixes it.
INPUT_TYPES: MappingProxyType[str, frozenset[str]] = MappingProxyType({"spo2_scale2": frozenset({"boolean"})})

#: The parameters a derivation needs from the protocol (a choice the protocol makes, not a measurement).
DERIVATION_PARAMETERS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {"priest_score": ("age_bands",), "priest_band": ("age_bands",)}
)


class Derivation(ProtocolModel):
    """A derived field: which derivation, and which field supplies each of its inputs."""

    name: str = Field(
        description="A derivation the engine knows, with the input roles `inputs` maps to fields: "
        + "; ".join(f"{n} ({', '.join(roles)})" for n, roles in DERIVATIONS.items())
        + "."
    )
    inputs: dict[str, str] = Field(
        description=(
            "Input role -> field id (same form), form.field for another form at the same visit (collected at one "
            "or more of this form's visits), screening.field for screening. "
            "news2 and news2_band also take spo2_scale2, a yes/no field: yes scores SpO2 on scale 2 (RCP 2017)."
        )
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of the derivation the protocol chooses (e.g. PRIEST age_bands as [low, high, points]).",
    )

    @model_validator(mode="after")
    def _known(self) -> Derivation:
        if self.name not in DERIVATIONS:
            raise ValueError(f"unknown derivation {self.name!r}; known: {', '.join(DERIVATIONS)}")
        needed = set(DERIVATIONS[self.name])
        missing = sorted(needed - set(self.inputs))
        extra = sorted(set(self.inputs) - needed - set(OPTIONAL_INPUTS.get(self.name, ())))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing inputs {', '.join(missing)}")
            if extra:
                parts.append(f"unknown inputs {', '.join(extra)}")
            optional = OPTIONAL_INPUTS.get(self.name, ())
            takes = f"; may take {', '.join(optional)}" if optional else ""
            needs = ", ".join(DERIVATIONS[self.name])
            raise ValueError(f"{self.name}: " + "; ".join(parts) + f" (needs {needs}{takes})")
        wanted = DERIVATION_PARAMETERS.get(self.name, ())
        missing = [p for p in wanted if p not in self.parameters]
        extra = sorted(set(self.parameters) - set(wanted))
        if missing:
            raise ValueError(f"{self.name}: missing parameters {', '.join(missing)}")
        if extra:
            takes = ", ".join(wanted) or "none"
            raise ValueError(f"{self.name}: unknown parameters {', '.join(extra)} (takes {takes})")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The fields read, as written."""
        return tuple(self.inputs.values())

    def describe(self) -> str:
        """One line for the codebook: ``name(role=field, ...)``."""
        return f"{self.name}({', '.join(f'{role}={source}' for role, source in self.inputs.items())})"
