"""The trial design: arms, sample size, masking, eligibility rules and the randomization method.

Eligibility rules are data, not code: a small grammar of comparisons, ranges, booleans, sets and
all-of/any-of/not over named screening fields, which the eligibility engine evaluates.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from trialwright.protocol.base import LONGEST_TEXT, SHORT_TEXT, Code, Identifier, ProtocolModel, Range, stored_text
from trialwright.protocol.derivations import Derivation
from trialwright.protocol.forms import Choice, UnitConversion, units_once

__all__ = [
    "KNOWN_ROLES",
    "LEVEL_PARTIES",
    "Arm",
    "ArmRole",
    "Assent",
    "Blinding",
    "Criterion",
    "Eligibility",
    "Intervention",
    "MaskedParty",
    "Masking",
    "Minimization",
    "Preparation",
    "PreparationAttribute",
    "Randomization",
    "Rule",
    "SampleSize",
    "ScreeningField",
    "SimpleRandomization",
    "StratificationFactor",
    "StratifiedPermutedBlocks",
    "VolumeRange",
]


#: The roles a protocol may name (e.g. whom to notify of an unblinding). trialwright.domain.roles.Role
#: defines them; a test keeps the two lists equal.
KNOWN_ROLES: frozenset[str] = frozenset(
    {
        "administrator",
        "investigator",
        "study_coordinator",
        "outcome_assessor",
        "unblinded_pharmacist",
        "unblinded_statistician",
        "blinded_statistician",
        "monitor",
        "data_manager",
        "dsmb_member",
        "coder",
    }
)


class ArmRole(StrEnum):
    """What an arm is for."""

    EXPERIMENTAL = "experimental"
    PLACEBO = "placebo_comparator"
    ACTIVE = "active_comparator"
    NO_INTERVENTION = "no_intervention"
    SHAM = "sham_comparator"


class VolumeRange(ProtocolModel):
    """The volume administered."""

    min: float = Field(gt=0, description="Smallest volume.")
    max: float = Field(gt=0, description="Largest volume.")
    unit: str = Field(description="Unit of volume, e.g. mL.")

    @model_validator(mode="after")
    def _ordered(self) -> VolumeRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not be above max ({self.max:g})")
        return self


class PreparationAttribute(ProtocolModel):
    """One value the unblinded pharmacist records when preparing a dose (e.g. the lot, the volume drawn up)."""

    id: Identifier = Field(description="Attribute id, unique within the preparation.")
    label: str = Field(description="Label shown to the pharmacist.")
    type: Literal["integer", "decimal", "text"] = Field(description="integer, decimal or text.")
    unit: str | None = Field(default=None, description="Unit the value is recorded in (numbers only), e.g. mL.")
    unit_translations: dict[str, str] = Field(
        default_factory=dict,
        description="Optional: the unit in other languages (e.g. {fa: میلی‌گرم}), as pages show it to a reader of "
        "that language; the value is stored in ``unit``. Without it the unit is shown as written. Given, it needs "
        "every language the protocol declares.",
    )
    hard_limits: Range | None = Field(default=None, description="Outside these the value is refused (numbers only).")
    required: bool = Field(default=True, description="Whether the preparation is refused without it.")
    max_length: int | None = Field(
        default=None,
        ge=1,
        le=LONGEST_TEXT,
        description="text only: the most characters accepted (default 200, at most 10,000); longer is refused.",
    )
    translations: dict[str, str] = Field(default_factory=dict, description="Label in other languages.")

    @model_validator(mode="after")
    def _consistent(self) -> PreparationAttribute:
        if self.type == "text" and (self.unit is not None or self.hard_limits is not None):
            raise ValueError("unit and hard_limits are only for integer and decimal attributes")
        if self.type != "text" and self.max_length is not None:
            raise ValueError("max_length is only for text attributes")
        return self

    @property
    def text_limit(self) -> int:
        """The most characters a text attribute accepts."""
        return self.max_length if self.max_length is not None else SHORT_TEXT


class Preparation(ProtocolModel):
    """What the unblinded pharmacist prepares for an arm, as the values recorded for each dose."""

    attributes: list[PreparationAttribute] = Field(
        default_factory=list,
        description="The values recorded for each dose, besides who prepared it and when (none: who and when only).",
    )

    @model_validator(mode="after")
    def _unique(self) -> Preparation:
        ids = [a.id for a in self.attributes]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"attribute ids must be unique: {', '.join(twice)}")
        return self


class Intervention(ProtocolModel):
    """What an arm receives."""

    name: str = Field(description="Name of the product or procedure.")
    category: str | None = Field(default=None, description="Registry category, e.g. Treatment - Other, Placebo.")
    route: str = Field(
        description="Route of administration, e.g. intravenous. When a trial masks the participant or the care "
        "provider and its arms' routes differ, `protocol check` notes each arm's route: the blind needs a "
        "double-dummy or a matching administration."
    )
    dose: str | None = Field(default=None, description="Dose, as text (e.g. 5x10^10 particles).")
    volume: VolumeRange | None = Field(default=None, description="Volume range.")
    schedule: str = Field(description="How often and when, e.g. single dose.")
    background_therapy: str | None = Field(default=None, description="Therapy every arm also receives.")
    preparation: Preparation | Literal["none"] | None = Field(
        default=None,
        description="What the unblinded pharmacist prepares and records for each dose, or none (nothing to "
        "prepare). Left out: nothing for a no_intervention arm (it receives no product), otherwise a preparation "
        "recorded by who and when only (no value is asked that the protocol does not declare).",
    )


class Arm(ProtocolModel):
    """A group participants are allocated to."""

    code: Code = Field(description="Short code used in the allocation list; never shown to blinded users.")
    name: str = Field(description="Name of the arm; never shown to blinded users.")
    role: ArmRole = Field(description="experimental, placebo_comparator, active_comparator, ...")
    description: str = Field(description="Description as registered.")
    intervention: Intervention = Field(description="What the arm receives.")
    ratio: int = Field(description="Allocation ratio weight: a whole number >= 1.")
    translations: dict[str, str] = Field(default_factory=dict, description="Arm name in other languages.")

    @field_validator("ratio", mode="before")
    @classmethod
    def _ratio(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be a whole number >= 1")
        return value

    def preparation(self) -> Preparation | None:
        """What the pharmacist prepares for this arm; None when there is nothing to prepare."""
        declared = self.intervention.preparation
        if declared == "none" or (declared is None and self.role is ArmRole.NO_INTERVENTION):
            return None
        return declared if isinstance(declared, Preparation) else Preparation()


class SampleSize(ProtocolModel):
    """The planned number of participants."""

    target: int = Field(ge=1, description="Target number randomized, overall.")
    per_arm: dict[str, int] = Field(default_factory=dict, description="Target per arm code (optional).")
    justification: str | None = Field(default=None, description="How the target was chosen.")


class MaskedParty(StrEnum):
    """Who may be kept from knowing the allocation."""

    PARTICIPANT = "participant"
    CARE_PROVIDER = "care_provider"
    INVESTIGATOR = "investigator"
    OUTCOME_ASSESSOR = "outcome_assessor"
    DATA_ANALYST = "data_analyst"


class Blinding(StrEnum):
    """The trial's blinding, as registered; what each level masks in the system is
    ``trialwright.domain.masking.masked_roles``."""

    OPEN = "open"  # open label: no one is masked; every role sees arms; nothing to unblind
    SINGLE = "single"  # the participant only (no system user is masked)
    DOUBLE = "double"  # participants and everyone caring for or assessing them: every role except those
    #                    unblinded by their work (unblinded pharmacist, unblinded statistician, DSMB)
    TRIPLE = "triple"  # as double, and the data analysts (the blinded statistician) too
    CUSTOM = "custom"  # exactly the roles listed in masked_roles (e.g. outcome assessors only)


#: The parties each level masks at least (the registry's words), and the parties filled in when none are listed.
LEVEL_PARTIES: dict[Blinding, tuple[frozenset[MaskedParty], tuple[MaskedParty, ...]]] = {
    Blinding.OPEN: (frozenset(), ()),
    Blinding.SINGLE: (frozenset({MaskedParty.PARTICIPANT}), (MaskedParty.PARTICIPANT,)),
    Blinding.DOUBLE: (
        frozenset({MaskedParty.PARTICIPANT, MaskedParty.INVESTIGATOR}),
        (MaskedParty.PARTICIPANT, MaskedParty.CARE_PROVIDER, MaskedParty.INVESTIGATOR, MaskedParty.OUTCOME_ASSESSOR),
    ),
    Blinding.TRIPLE: (
        frozenset({MaskedParty.PARTICIPANT, MaskedParty.INVESTIGATOR, MaskedParty.DATA_ANALYST}),
        (
            MaskedParty.PARTICIPANT,
            MaskedParty.CARE_PROVIDER,
            MaskedParty.INVESTIGATOR,
            MaskedParty.OUTCOME_ASSESSOR,
            MaskedParty.DATA_ANALYST,
        ),
    ),
}


class Masking(ProtocolModel):
    """Who is masked, and who is told of an emergency unblinding."""

    blinding: Blinding | None = Field(
        default=None,
        description="open, single (the participant), double, triple, or custom (exactly masked_roles). Without "
        "it (protocols written before it existed), masked must list the parties and every role except those "
        "unblinded by their work is masked, as double.",
    )
    masked: list[MaskedParty] = Field(
        default_factory=list,
        description="The masked parties, as registered (filled in from blinding when left out; empty for open).",
    )
    masked_roles: list[str] = Field(
        default_factory=list,
        description="blinding custom: exactly the system roles kept from the arms (e.g. [outcome_assessor]).",
    )
    description: str | None = Field(default=None, description="How masking is achieved.")
    unblinding_notify: list[str] = Field(
        default_factory=list, description="Roles notified when a participant is emergency-unblinded."
    )
    identical_appearance: bool = Field(
        default=True, description="Whether active and placebo doses look identical once prepared."
    )
    account_approvers: list[str] = Field(
        default_factory=lambda: ["administrator"],
        description="The two-person rule: roles whose holders approve a request to create, re-enable or reset "
        "the password of an unblinded, DSMB or approving account (a second person, never the requester or the "
        "account concerned).",
        min_length=1,
    )
    open_label_comparator: str | None = Field(
        default=None,
        description="An open-label trial with a placebo or sham arm says why here (e.g. an open-label placebo "
        "study); without it such an arm is refused as a contradiction.",
    )

    @model_validator(mode="before")
    @classmethod
    def _parties(cls, data: Any) -> Any:
        """Left out, the masked parties are the level's (double: participant, care provider, investigator and
        outcome assessor)."""
        if isinstance(data, dict) and not data.get("masked"):
            try:
                level = Blinding(str(data.get("blinding")))
            except ValueError:
                return data  # no level, or an unknown one (refused by the field's own validation)
            if level in LEVEL_PARTIES and level is not Blinding.OPEN:
                return {**data, "masked": [p.value for p in LEVEL_PARTIES[level][1]]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Masking:
        level = self.blinding
        if level is None:
            if not self.masked:
                raise ValueError("declare blinding: open, single, double, triple or custom (with masked_roles)")
            if self.masked_roles:
                raise ValueError("masked_roles lists the roles of blinding: custom; declare it")
            return self
        if level is Blinding.OPEN:
            named = [
                name
                for name, value in (
                    ("masked", self.masked),
                    ("masked_roles", self.masked_roles),
                    ("unblinding_notify", self.unblinding_notify),
                )
                if value
            ]
            if named:
                raise ValueError(f"an open-label trial masks no one and unblinds no one: remove {', '.join(named)}")
            return self
        if level is Blinding.CUSTOM:
            if not self.masked_roles:
                raise ValueError("blinding custom lists the masked system roles in masked_roles")
            return self
        if self.masked_roles:
            raise ValueError(f"masked_roles is for blinding custom; {level.value} fixes the masked roles")
        least = LEVEL_PARTIES[level][0]
        missing = sorted(p.value for p in least - set(self.masked))
        if missing:
            raise ValueError(f"{level.value}-blind masks {', '.join(missing)} too: add them to masked")
        if level is Blinding.SINGLE and set(self.masked) != {MaskedParty.PARTICIPANT}:
            raise ValueError("single-blind masks the participant only: declare double, triple or custom")
        return self


class ScreeningField(ProtocolModel):
    """A named value eligibility rules read; typed, with a unit, or derived from other fields."""

    id: Identifier = Field(description="Name used in rules, e.g. age or pf_ratio.")
    label: str = Field(description="Label shown to people.")
    type: Literal["integer", "decimal", "boolean", "choice", "date"] = Field(description="Value type.")
    unit: str | None = Field(default=None, description="Canonical unit.")
    unit_translations: dict[str, str] = Field(
        default_factory=dict,
        description="Optional: the unit in other languages (e.g. {fa: میلی‌گرم}), as pages show it to a reader of "
        "that language; the value is stored in ``unit``. Without it the unit is shown as written. Given, it needs "
        "every language the protocol declares.",
    )
    alternative_units: list[UnitConversion] = Field(
        default_factory=list, description="Other units accepted on entry, converted to the canonical unit."
    )
    choices: list[Choice] = Field(
        default_factory=list,
        description=(
            "Allowed answers when type is choice: a code (`female`, shown as its words), or `{code, label, "
            "translations}`."
        ),
    )
    hard_limits: tuple[float, float] | None = Field(
        default=None, description="[min, max]: a value outside is refused as implausible."
    )
    derived: Derivation | None = Field(default=None, description="Computed from other fields, never typed in.")
    decimals: int | None = Field(
        default=None,
        ge=0,
        le=6,
        description="Decimal places a derived value is rounded to (half away from zero), as the criteria read it "
        "and the pages show it. Required for a derived decimal field, as on forms.",
    )
    applies_if: Rule | None = Field(default=None, description="Asked only when this rule holds (e.g. sex = female).")
    translations: dict[str, str] = Field(default_factory=dict, description="Label in other languages.")

    @field_validator("choices", mode="before")
    @classmethod
    def _coded(cls, value: object) -> object:
        """A bare code is a choice labelled by its words (``high_flow_nasal``: high flow nasal)."""
        if isinstance(value, list):
            return [{"code": c, "label": c.replace("_", " ")} if isinstance(c, str) else c for c in value]
        return value

    @property
    def codes(self) -> list[str]:
        """The allowed codes, in protocol order."""
        return [c.code for c in self.choices]

    @model_validator(mode="after")
    def _choices(self, info: ValidationInfo) -> ScreeningField:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice field needs choices")
        if self.hard_limits and self.hard_limits[0] > self.hard_limits[1]:
            raise ValueError("hard_limits must be [min, max] with min <= max")
        if self.alternative_units and not self.unit:
            raise ValueError("alternative_units need a canonical unit")
        if self.decimals is not None and not (self.type == "decimal" and self.derived):
            raise ValueError("decimals are for a derived decimal field (a typed value keeps what was typed)")
        if self.type == "decimal" and self.derived and self.decimals is None and not _stored(info):
            raise ValueError(
                "a derived decimal field needs decimals: the places its value is rounded to (never a default)"
            )
        units_once(self.unit, self.alternative_units)
        return self


def _stored(info: ValidationInfo) -> bool:
    """Whether a protocol text read back from a trial database is being validated: one stored before derived
    screening fields declared ``decimals`` is read as its engine read it, the derived value exact."""
    return stored_text(info)


_COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")


class Rule(ProtocolModel):
    """A machine-checkable condition over screening fields.

    Exactly one form: ``{field, lt|le|gt|ge|eq|ne: value}``, ``{field, between: [lo, hi]}`` (inclusive),
    ``{field, is: true|false}``, ``{field, in: [...]}``, ``{all_of: [...]}``, ``{any_of: [...]}`` or
    ``{not: rule}``.
    """

    field: Identifier | None = Field(default=None, description="The screening field the comparison reads.")
    lt: float | None = Field(default=None, description="True when field < value.")
    le: float | None = Field(default=None, description="True when field <= value.")
    gt: float | None = Field(default=None, description="True when field > value.")
    ge: float | None = Field(default=None, description="True when field >= value.")
    eq: float | str | bool | None = Field(default=None, description="True when field == value.")
    ne: float | str | bool | None = Field(default=None, description="True when field != value.")
    between: tuple[float, float] | None = Field(default=None, description="True when lo <= field <= hi.")
    is_: bool | None = Field(default=None, alias="is", description="True when the boolean field has this value.")
    in_: list[str | float] | None = Field(default=None, alias="in", description="True when field is one of these.")
    all_of: list[Rule] | None = Field(default=None, description="True when every rule holds.")
    any_of: list[Rule] | None = Field(default=None, description="True when at least one rule holds.")
    not_: Rule | None = Field(default=None, alias="not", description="True when the rule does not hold.")

    @model_validator(mode="after")
    def _one_form(self) -> Rule:
        operators = [name for name in (*_COMPARISONS, "between", "is_", "in_") if getattr(self, name) is not None]
        combinators = [name for name in ("all_of", "any_of", "not_") if getattr(self, name) is not None]
        shown = [n.rstrip("_") for n in operators + combinators]
        if combinators:
            if len(combinators) > 1 or operators or self.field is not None:
                raise ValueError(f"a rule has exactly one form; this one has {', '.join(shown)}")
            children = self.all_of if self.all_of is not None else self.any_of
            if children is not None and not children:
                raise ValueError(f"{shown[0]} needs at least one rule")
            return self
        if self.field is None:
            raise ValueError("a rule needs a field (or all_of / any_of / not)")
        if len(operators) != 1:
            found = ", ".join(shown) if shown else "none"
            raise ValueError(
                f"a comparison needs exactly one of lt, le, gt, ge, eq, ne, between, is, in (found: {found})"
            )
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError("between must be [lo, hi] with lo <= hi")
        return self

    def fields(self) -> set[str]:
        """Every screening field the rule reads."""
        found = {self.field} if self.field else set()
        for child in (self.all_of or []) + (self.any_of or []) + ([self.not_] if self.not_ else []):
            found |= child.fields()
        return found


class Criterion(ProtocolModel):
    """One inclusion or exclusion criterion."""

    id: str = Field(pattern=r"^[IE][0-9]{1,3}$", description="Id: I1, I2, ... for inclusion, E1, ... for exclusion.")
    text: str = Field(description="The wording shown to people.")
    rule: Rule = Field(description="Inclusion: met when the rule holds. Exclusion: excluded when it holds.")
    translations: dict[str, str] = Field(default_factory=dict, description="Wording in other languages.")
    note: str | None = Field(default=None, description="Why the rule reads the record this way.")


class Assent(ProtocolModel):
    """When a minor's own assent is sought beside a representative's consent (ICH E6(R3) 2.8.9-2.8.12, E11)."""

    from_age: float = Field(gt=0, description="Age, in ``unit``, from which the child's assent is sought.")
    unit: Literal["years", "months"] = Field(description="Unit of from_age: years or months.")
    age_field: Identifier = Field(
        description="Numeric screening field holding the age at screening, whose own unit is years or months."
    )
    form_versions: list[str] = Field(
        default_factory=list,
        description="Assent form versions; when listed, a given assent names one of them. Empty: no assent form.",
    )
    consent_age: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Age, in ``unit``, from which a participant consents for themselves (the age of consent, e.g. 18); "
            "below it only a representative consents. ``protocol check`` requires it with assent."
        ),
    )


class Eligibility(ProtocolModel):
    """Who may take part: the screening fields and the criteria over them."""

    screening_fields: list[ScreeningField] = Field(min_length=1, description="Fields collected at screening.")
    inclusion: list[Criterion] = Field(min_length=1, description="All must be met.")
    exclusion: list[Criterion] = Field(default_factory=list, description="None may hold.")
    consent_field: Identifier | None = Field(
        default=None,
        description="Boolean screening field set from the consent record (not typed in), if a criterion reads it.",
    )
    regained_capacity: bool = Field(
        default=True,
        description="Whether a participant for whom a representative consented can later decide for themself on "
        "regaining capacity: true where adults who lack capacity are enrolled (e.g. critically ill); false where a "
        "representative consents because the participant is a minor (a parent for a child), who does not regain "
        "capacity during the trial. When false, the regained-capacity decision is refused and never offered. "
        "Absent: true (a representative's consent may be followed by the participant's own decision)."
    )
    assent: Assent | None = Field(
        default=None,
        description="When a representative consents for a participant of at least this age, the participant's "
        "assent is recorded with the consent (given, with who obtained it and when, or not sought with the "
        "reason), and a dissent refuses enrolment. Absent: assent is not recorded (adults).",
    )

    @model_validator(mode="before")
    @classmethod
    def _stored_before_regained(cls, data: Any, info: ValidationInfo) -> Any:
        # A protocol text stored in a trial database before ``regained_capacity`` existed reads as its engine
        # did: the decision was offered after any representative's consent.
        if _stored(info) and isinstance(data, dict) and "regained_capacity" not in data:
            return {**data, "regained_capacity": True}
        return data

    @model_validator(mode="after")
    def _prefixes(self) -> Eligibility:
        wrong = [c.id for c in self.inclusion if not c.id.startswith("I")]
        wrong += [c.id for c in self.exclusion if not c.id.startswith("E")]
        if wrong:
            raise ValueError(f"inclusion ids start with I and exclusion ids with E: {', '.join(wrong)}")
        if self.consent_field is not None:
            found = next((f for f in self.screening_fields if f.id == self.consent_field), None)
            if found is None or found.type != "boolean":
                raise ValueError(f"consent_field {self.consent_field!r} must name a boolean screening field")
        return self


class StratificationFactor(ProtocolModel):
    """A factor randomization balances over: the site, or a screening field cut into levels."""

    id: Identifier = Field(description="Factor name; `site` means the participant's site.")
    field: Identifier | None = Field(default=None, description="Screening field it reads (not for site).")
    cut_points: list[float] = Field(default_factory=list, description="Cut points for a numeric field.")
    levels: list[str] = Field(default_factory=list, description="Codes for a choice or boolean field.")
    weight: float = Field(default=1.0, gt=0, description="Weight in minimization's imbalance sum.")

    @model_validator(mode="after")
    def _source(self) -> StratificationFactor:
        if self.id != "site" and self.field is None:
            raise ValueError("a factor other than site needs a field")
        if self.cut_points != sorted(set(self.cut_points)):
            raise ValueError("cut_points must be strictly increasing")
        return self

    def bands(self) -> list[str]:
        """The level names the cut points make: ``[50, 65]`` gives ``<50``, ``50-<65`` and ``>=65``."""
        cuts = self.cut_points
        if not cuts:
            return []
        inner = [f"{_number(lo)}-<{_number(hi)}" for lo, hi in itertools.pairwise(cuts)]
        return [f"<{_number(cuts[0])}", *inner, f">={_number(cuts[-1])}"]


def _number(value: float) -> str:
    """A cut point as written (65, 7.5), exact even where ``:g`` would round (1000001 is not 1e+06)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


class StratifiedPermutedBlocks(ProtocolModel):
    """Permuted blocks of randomly chosen sizes within each stratum."""

    method: Literal["stratified_permuted_blocks"] = Field(description="The method's name.")
    block_sizes: list[int] = Field(min_length=1, description="Allowed block sizes, each a multiple of the ratio sum.")
    stratify_by: list[StratificationFactor] = Field(default_factory=list, description="Stratification factors.")
    concealment: str | None = Field(default=None, description="How allocation is concealed.")
    list_length_per_stratum: int | None = Field(
        default=None,
        ge=1,
        description="Entries generated per stratum (default: twice the target), rounded up to whole blocks: the "
        "last block is never cut, so a stratum may hold a few more.",
    )


class Minimization(ProtocolModel):
    """Pocock-Simon minimization."""

    method: Literal["minimization"] = Field(description="The method's name.")
    factors: list[StratificationFactor] = Field(min_length=1, description="Factors to balance, with weights.")
    imbalance: Literal["range", "variance"] = Field(default="range", description="Imbalance measure.")
    probability: float = Field(gt=0.5, le=1.0, description="Probability of the least-imbalance arm.")
    concealment: str | None = Field(default=None, description="How allocation is concealed.")


class SimpleRandomization(ProtocolModel):
    """Simple (unrestricted) randomization: each participant allocated independently, with probabilities in the arms'
    ratio, from a list made in advance from the seed.

    The list is one sequence (stratum ``all``): every draw is independent, so lists per stratum would change
    nothing, and ``stratify_by`` is refused. Balance is not restricted: a small trial may end noticeably unbalanced.
    """

    method: Literal["simple"] = Field(description="The method's name.")
    list_length: int = Field(
        ge=1, description="Entries generated in advance; at least the sample size target (the list can be extended)."
    )
    concealment: str | None = Field(default=None, description="How allocation is concealed.")

    @model_validator(mode="before")
    @classmethod
    def _no_strata(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("stratify_by" in data or "factors" in data):
            key = "stratify_by" if "stratify_by" in data else "factors"
            raise ValueError(
                f"{key}: simple randomization draws every allocation independently, so strata change nothing; "
                "remove it, or use stratified_permuted_blocks (or minimization) to balance over factors"
            )
        return data


Randomization = Annotated[
    StratifiedPermutedBlocks | Minimization | SimpleRandomization, Field(discriminator="method")
]
