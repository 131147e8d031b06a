"""Rendering a protocol as its registry record in the terminal (``trialwright protocol show``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from trialwright.analysis.estimands import in_words
from trialwright.domain.calendars import CalendarPreference, format_date
from trialwright.domain.masking import masked_roles
from trialwright.protocol import Protocol
from trialwright.protocol.registry import Address, Contact

__all__ = ["render_record"]

Row = tuple[str, object]


def _text(value: object, calendar: CalendarPreference) -> str:
    if value is None or value == "":
        return "empty"
    if isinstance(value, dt.date):
        return format_date(value, calendar)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v, calendar) for v in value) or "empty"
    return str(getattr(value, "value", value))


def _section(console: Console, title: str, rows: Iterable[Row], calendar: CalendarPreference) -> None:
    table = Table(show_header=False, box=None, pad_edge=False, expand=True)
    table.add_column(style="bold", ratio=1, overflow="fold")
    table.add_column(ratio=3, overflow="fold")
    for label, value in rows:
        table.add_row(label, _text(value, calendar))
    console.print(Panel(table, title=f"[bold]{title}[/]", title_align="left"))


def _address(a: Address) -> list[Row]:
    return [
        ("Street address", a.street),
        ("City", a.city),
        ("Province", a.province),
        ("Postal code", a.postal_code),
        ("Phone", a.phone),
        ("Email", a.email),
    ]


def _contact(c: Contact) -> list[Row]:
    return [
        ("Full name", c.name),
        ("Organisation", c.organisation),
        ("Position", c.position),
        ("Latest degree", c.degree),
        ("Other areas of specialty/work", c.specialty),
        *_address(c.address),
    ]


def render_record(console: Console, p: Protocol, calendar: CalendarPreference) -> None:
    """Print every element of the registry record, in the record's order."""
    t = p.trial
    console.print(f"[bold]{t.titles.scientific}[/]\n")
    _section(
        console,
        "Registration",
        [
            ("Registry ids", [f"{i.registry}: {i.id}" + (" (primary)" if i.primary else "") for i in t.ids]),
            ("Registration date", t.registration.date),
            ("Registration timing", t.registration.timing),
            ("Last update", t.registration.last_update),
            ("Update count", t.registration.update_count),
            ("Recruitment status", t.recruitment_status),
            ("Expected recruitment start date", t.dates.expected_recruitment_start),
            ("Expected recruitment end date", t.dates.expected_recruitment_end),
            ("Actual recruitment start date", t.dates.actual_recruitment_start),
            ("Actual recruitment end date", t.dates.actual_recruitment_end),
            ("Trial completion date", t.dates.completion),
            ("Protocol version", f"{p.version.number} of {format_date(p.version.date, calendar)}"),
        ],
        calendar,
    )
    _section(
        console,
        "Titles",
        [
            ("Scientific title", t.titles.scientific),
            ("Public title", t.titles.public),
            ("Acronym", t.titles.acronym),
        ],
        calendar,
    )
    _section(
        console,
        "Protocol summary",
        [
            ("Study aim", t.summary.aim),
            ("Design", t.summary.design),
            ("Settings and conduct", t.summary.settings_and_conduct),
            ("Participants", t.summary.participants),
            ("Intervention groups", t.summary.interventions),
            ("Main outcome variables", t.summary.main_outcomes),
        ],
        calendar,
    )
    d = t.design
    _section(
        console,
        "Design",
        [
            ("Purpose", d.purpose),
            ("Phase", t.phase),
            ("Randomization", d.allocation),
            ("Randomization description", d.randomization_description),
            ("Method (protocol)", p.randomization.method),
            ("Blinding", d.blinding),
            ("Blinding description", d.blinding_description),
            ("Groups that have been masked", [m.value for m in p.masking.masked]),
            ("Blinding (protocol)", p.masking.blinding.value if p.masking.blinding else "as double (not declared)"),
            ("Roles kept from the arms", sorted(r.value for r in masked_roles(p)) or "none"),
            ("Placebo", "used" if d.placebo else "not used"),
            ("Assignment", d.assignment),
            ("Other design features", d.other_features),
            ("Target sample size", p.sample_size.target),
            ("Per arm", [f"{code}: {n}" for code, n in p.sample_size.per_arm.items()]),
        ],
        calendar,
    )
    inclusion = [(c.id, c.text) for c in p.eligibility.inclusion]
    exclusion = [(c.id, c.text) for c in p.eligibility.exclusion]
    _section(console, "Inclusion criteria", inclusion, calendar)
    _section(console, "Exclusion criteria", exclusion, calendar)
    for n, e in enumerate(t.ethics_committees, 1):
        _section(
            console,
            f"Ethics committee {n}",
            [
                ("Name of ethics committee", e.name),
                *_address(e.address),
                ("Approval date", e.approval_date),
                ("Ethics committee reference number", e.reference_number),
            ],
            calendar,
        )
    _section(
        console,
        "Health conditions studied",
        [(c.icd10, f"{c.description} (ICD-10 {': '.join(filter(None, (c.icd10, c.icd10_description)))})")
         for c in t.conditions],
        calendar,
    )
    for n, o in enumerate(p.outcomes, 1):
        _section(
            console,
            f"{o.kind.capitalize()} outcome {n}",
            [
                ("Description", o.description),
                ("Timepoint", o.registry_timepoint),
                ("Method of measurement", o.method_of_measurement),
                *(("Estimand: " + name.lower(), words) for name, words in in_words(p, o)),
            ],
            calendar,
        )
    for n, a in enumerate(p.arms, 1):
        _section(
            console,
            f"Intervention group {n}",
            [
                ("Code", a.code),
                ("Name", a.name),
                ("Description", a.description),
                ("Category", a.intervention.category),
                ("Route", a.intervention.route),
                ("Dose", a.intervention.dose),
                (
                    "Volume",
                    f"{a.intervention.volume.min:g}-{a.intervention.volume.max:g} {a.intervention.volume.unit}"
                    if a.intervention.volume
                    else None,
                ),
                ("Allocation ratio", a.ratio),
            ],
            calendar,
        )
    for n, site in enumerate(p.sites, 1):
        _section(
            console,
            f"Recruitment center {n} ({site.code})",
            [
                ("Name of recruitment center", site.name),
                ("Full name of responsible person", site.responsible_person),
                *_address(site.address),
                ("Time zone", site.timezone),
            ],
            calendar,
        )
    for n, sp in enumerate(t.sponsors, 1):
        _section(
            console,
            f"Sponsor {n}",
            [
                ("Name of organization / entity", sp.organisation),
                ("Full name of responsible person", sp.responsible_person),
                *_address(sp.address),
            ],
            calendar,
        )
    for f in t.funding:
        _section(
            console,
            "Funding source",
            [
                ("Title of funding source", f.title),
                ("Same as the sponsor", f.same_as_sponsor),
                ("Proportion provided by this source", f"{f.proportion:g}%"),
                ("Public or private sector", f.sector),
                ("Domestic or foreign origin", f.origin),
                ("Type of organization providing the funding", f.organisation_type),
                ("Grant name", f.grant_name),
                ("Grant code / Reference number", f.grant_code),
            ],
            calendar,
        )
    contacts = [
        ("Person responsible for general inquiries", t.contacts.general),
        ("Person responsible for scientific inquiries", t.contacts.scientific),
        ("Person responsible for updating data", t.contacts.updating),
    ]
    if t.contacts.registrant is not None:
        contacts.insert(0, ("Registrant", t.contacts.registrant))
    for title, contact in contacts:
        _section(console, title, _contact(contact), calendar)
    share = t.sharing
    _section(
        console,
        "Sharing plan",
        [
            ("Deidentified Individual Participant Data Set (IPD)", share.ipd.shared),
            ("Study Protocol", share.study_protocol.shared),
            ("Statistical Analysis Plan", share.statistical_analysis_plan.shared),
            ("Informed Consent Form", share.informed_consent_form.shared),
            ("Clinical Study Report", share.clinical_study_report.shared),
            ("Analytic Code", share.analytic_code.shared),
            ("Data Dictionary", share.data_dictionary.shared),
            ("Title and more details about the data/document", share.details),
            ("When the data will become available and for how long", share.when_available),
            ("To whom data/document is available", share.to_whom),
            ("Under which criteria data/document could be used", share.criteria),
            ("From where data/document is obtainable", share.where),
            ("What processes are involved for a request to access data/document", share.request_process),
        ],
        calendar,
    )
    for amendment in p.amendments:
        _section(
            console,
            f"Amendment {amendment.number} (version {amendment.version})",
            [
                ("Date", amendment.date),
                ("Reason for update", amendment.reason),
                ("Changes", amendment.changes),
            ],
            calendar,
        )
    _section(console, "Comments", [("Comments", t.comments)], calendar)
