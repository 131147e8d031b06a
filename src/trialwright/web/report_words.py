"""The study report in the reader's language (``trialwright.analysis.report.ReportWords``), for the analysis pages.

The report's headings, table labels and sentences are the app's messages (the catalog); the protocol's texts it
shows (the trial's public title, the analysis sets, the arms when named, Table 1's fields with their units and
choices, the visits) are the protocol's ``translations`` in the reader's language, where the protocol gives them;
numbers and dates are in the language's digits. What the protocol words only in English (an outcome's registered
description and timepoint, the estimands' definitions) is shown as registered, as the registry holds it.
"""

from __future__ import annotations

from trialwright.analysis.report import ReportWords
from trialwright.protocol import Protocol
from trialwright.web.i18n import text_direction, translations
from trialwright.web.localized import digits, names, said

__all__ = ["report_words"]


def report_words(protocol: Protocol, lang: str) -> ReportWords:
    """How the report speaks to a reader of ``lang``."""
    gettext = translations(lang).gettext
    own: dict[str, str] = {}
    titles = protocol.trial.titles
    public = titles.translations.get(lang, {}).get("public")
    if public:
        own[titles.public] = public
    for s in protocol.analysis_sets:
        own[s.name] = said(s, lang)
    for a in protocol.arms:
        own[a.name] = said(a, lang)
    plan = protocol.analysis_plan
    for ref in plan.baseline_table if plan is not None else ():
        form_id, _, field_id = ref.partition(".")
        f = protocol.form(form_id).field(field_id)
        unit = f" ({f.unit})" if getattr(f, "unit", None) else ""
        own[f.label + unit] = (f.translations.get(lang) or f.label) + unit
        for c in f.choices or []:
            own[f"  {c.label}"] = f"  {c.translations.get(lang) or c.label}"

    def words(text: str) -> str:
        if text in own:
            return own[text]
        stripped = text.strip()  # Table 1's own rows ("Participants", "  missing", "  yes") are the app's words
        return text.replace(stripped, gettext(stripped)) if stripped else text

    return ReportWords(
        lang=lang,
        direction=text_direction(lang),
        gettext=gettext,
        said=words,
        digits=lambda value: digits(value, lang),
        visit=names(protocol, lang)["visit_name"],
    )
