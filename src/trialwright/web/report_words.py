"""The study report in the reader's language (``trialwright.analysis.report.ReportWords``), for the analysis pages.

The report's headings, table labels and sentences are the app's messages (the catalog); the protocol's texts it
shows (the trial's public title, the analysis sets, the arms when named, Table 1's fields with their units and
choices, the visits, the expected adverse events' terms) are the protocol's ``translations`` in the reader's
language, where the protocol gives them; numbers and dates are in the language's digits, and a value the analysis
writes in English words (``NA``, Table 1's ``median``) in the reader's words. An outcome's registered description
and timepoint are its ``description_translations`` and ``registry_timepoint_translations``, and its estimand is said
again in the reader's language (``analysis.estimands.in_words`` with the catalog: the analysis set's definition, the
fields' labels and the visits from the protocol's translations); each only where the result's English is the
protocol's own, so a report never shows another outcome's words. The sentences the analysis builds with values (the
notes, why a participant was not analysed, a comparison's label, method, scale and note, why an estimate is not
estimable) are read back from their English (``analysis.sentences``) and said in the catalog's words with their
parts in the reader's language.
"""

from __future__ import annotations

import re
from functools import cache

from trialwright.analysis import sentences
from trialwright.analysis.engine import CONSORT_SET, NOT_IN_SET
from trialwright.analysis.estimands import in_words
from trialwright.analysis.estimands.words import Speech
from trialwright.analysis.report import ReportWords
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.protocol.sources import source
from trialwright.web.i18n import N_, text_direction, translations
from trialwright.web.localized import digits, names, said

__all__ = ["report_words"]

_NA, _MEDIAN = re.compile(r"\bNA\b"), re.compile(r"\bmedian\b")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
#: An identifier inside a sentence in a right-to-left language: isolated left to right (LRI ... PDI)
_ISOLATED = "\u2066%s\u2069"


def report_words(protocol: Protocol, lang: str) -> ReportWords:
    """How the report speaks to a reader of ``lang``."""
    gettext = translations(lang).gettext
    own: dict[str, str] = {}
    titles = protocol.trial.titles
    public = titles.translations.get(lang, {}).get("public")
    if public:
        own[titles.public] = public
    short = titles.translations.get(lang, {}).get("short")
    if short and titles.short:  # the CONSORT diagram's title
        own[titles.short] = short
    for s in protocol.analysis_sets:
        own[s.name] = said(s, lang)
        # the CONSORT diagram's reason for exclusion from analysis: not in the first primary outcome's set
        own[NOT_IN_SET % {"set": s.name}] = gettext(NOT_IN_SET) % {"set": said(s, lang)}
    for a in protocol.arms:
        own[a.name] = said(a, lang)
    for event in protocol.safety.expected_events:  # the tables by worst grade name each by its term
        own[event.term] = event.translations.get(lang) or event.term
    plan = protocol.analysis_plan
    for ref in plan.baseline_table if plan is not None else ():
        f = source(protocol, ref).field  # a form's or the screening form's (protocol.sources)
        unit = f" ({f.unit})" if getattr(f, "unit", None) else ""
        unit_said = (getattr(f, "unit_translations", None) or {}).get(lang)  # the protocol's word for the unit
        own[f.label + unit] = (f.translations.get(lang) or f.label) + (f" ({unit_said})" if unit_said else unit)
        for c in f.choices or []:
            own[f"  {c.label}"] = f"  {c.translations.get(lang) or c.label}"

    speech = Speech(lang=lang, gettext=gettext, digits=lambda value: digits(value, lang))
    outcomes = {o.id: o for o in protocol.outcomes}
    for o in protocol.outcomes:  # the CONSORT table's rows, one per primary outcome's variable
        description = o.description_translations.get(lang) or o.description
        for variable in (o.id, *o.estimand.variable.fields):
            own[f"{o.description} ({variable})"] = f"{description} ({variable})"
        for s in protocol.analysis_sets:  # the CONSORT diagram's analysis set, named with its primary outcome
            english = CONSORT_SET % {"set": s.name, "outcome": o.description}
            own[english] = gettext(CONSORT_SET) % {"set": said(s, lang), "outcome": description}

    @cache
    def estimand(outcome_id: str) -> dict[str, tuple[str, str]]:
        o = outcomes[outcome_id]
        english, there = in_words(protocol, o), in_words(protocol, o, speech)
        return {name: (words, dict(there)[name]) for name, words in english}

    def outcome(outcome_id: str, item: str, english: str) -> str:
        o = outcomes.get(outcome_id)
        if o is None or lang == "en":
            return english
        if item in ("description", "registry_timepoint"):
            if getattr(o, item) != english:
                return english
            return getattr(o, f"{item}_translations").get(lang) or english
        own_english, translated = estimand(outcome_id).get(item, ("", ""))
        return translated if own_english == english else english

    def words(text: str) -> str:
        if text in own:
            return own[text]
        stripped = text.strip()  # Table 1's own rows ("Participants", "  missing", "  yes") are the app's words
        return text.replace(stripped, gettext(stripped)) if stripped else text

    na, median = gettext(N_("NA")), gettext(N_("median"))
    percent = gettext(N_("%(percent)s%%"))
    visit_names = names(protocol, lang)["visit_name"]
    form_name = names(protocol, lang)["form_name"]
    visit_ids = {v.id for v in protocol.visits}

    def visit_name(visit_id: str) -> str:  # a visit by its name; the end of a stay (not a visit) in words
        if visit_id == sentences.STAY_END and visit_id not in visit_ids:
            return gettext(sentences.STAY_END)
        return visit_names(visit_id)

    set_names = {s.id: said(s, lang) for s in protocol.analysis_sets}

    def part(name: str, english: str) -> str:  # a part of a sentence the analysis built (``analysis.sentences``)
        if name == "visit":
            return visit_name(english)
        if name in ("treatment", "reference", "group", "set"):  # a group (an arm by its name) or an analysis set
            return words(english)
        if name in ("how", "mark", "covariance"):  # how one left follow-up, a value's mark, a covariance: words
            asked = english[:1].upper() + english[1:] if name == "how" else english
            found = gettext(asked)
            return found if found != asked else english
        if name == "p" and english == "NA":  # a p-value that could not be computed
            return na
        if name in ("day", "end", "death_day", "n", "k", "value", "p", "df", "effect", "low", "high"):
            return digits(english, lang)
        if name in ("interval", "arm"):  # how a Hodges-Lehmann interval was computed (exact, normal); an arm
            return gettext(english)
        if name == "sets":  # analysis set ids, by their names
            return gettext(sentences.AND).join(set_names.get(x, _ISOLATED % x) for x in english.split(sentences.AND))
        if name in ("at", "reviewed_at"):  # a time (UTC) in the reader's digits, left to right
            return _ISOLATED % digits(english, lang)
        if name == "reviewers":  # a lock's unmasked reviewers (roles, as ``services.lock`` says them) by their names
            known = {r.value.replace("_", " "): r for r in Role}
            return ", ".join(gettext(known[r].label) if r in known else r for r in english.split(", "))
        if name in ("forms", "withheld"):  # a lock's forms that reveal the arm, by their names
            return ", ".join(form_name(f) for f in english.split(", "))
        if name == "reason":  # a person's own words (a lock's reason), as written, in their own direction
            return f"\u2068{english}\u2069"
        return _ISOLATED % english  # an identifier (a field, a form, a set's id) as written, left to right

    choices: dict[tuple[str, str], str] = {}
    for o in protocol.outcomes:  # an outcome's categories (its first field's choices) by their labels
        fields = o.estimand.variable.fields
        form_id, _, field_id = fields[0].partition(".") if fields else ("", "", "")
        chosen = protocol.form(form_id).field(field_id) if fields else None
        for c in getattr(chosen, "choices", None) or []:
            choices[o.id, c.code] = c.translations.get(lang) or c.label

    def category(outcome_id: str, code: str) -> str:
        return code if lang == "en" else choices.get((outcome_id, code), digits(code, lang))

    def sentence(text: str) -> str:
        return text if lang == "en" else sentences.again(text, gettext, part)

    def value(text: str) -> str:  # NA and Table 1's "median" in words; numbers stay for ``digits``
        if lang == "en":
            return text
        # the language's percent sign after a number (Persian ٪, U+066A), as the CONSORT diagram writes a rate
        return _PERCENT.sub(lambda m: percent % {"percent": m[1]}, _MEDIAN.sub(median, _NA.sub(na, text)))

    return ReportWords(
        lang=lang,
        direction=text_direction(lang),
        gettext=gettext,
        said=words,
        digits=lambda value: digits(value, lang),
        visit=visit_name,
        outcome=outcome,
        value=value,
        sentence=sentence,
        category=category,
    )
