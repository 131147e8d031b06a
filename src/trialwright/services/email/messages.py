"""What each e-mail says, in English and Persian: a subject and a plain-text body per kind of message.

A message is rendered when it is sent, in the recipient's language, from the outbox row's ``params`` (which never
hold an arm) with every time on the clock of the site it concerns, the zone named. The texts are short on purpose:
an e-mail says that something happened or is due and where to look, never the clinical detail (the adverse event's
term, a value, an arm): that stays behind the sign-in, on the pages, masked as they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from trialwright.domain.calendars import CalendarPreference, format_date, offset_text
from trialwright.domain.numerals import in_digits
from trialwright.domain.roles import Role

__all__ = ["ARM_REVEALING", "KINDS", "LANGUAGES", "Rendered", "local_time", "render"]

#: The languages a message is written in (the accounts' languages); any other gets English.
LANGUAGES = ("en", "fa")
#: The languages written right to left.
_RTL = frozenset({"fa"})

_DEADLINE_NAMES = {
    "en": {
        "sae_to_sponsor": "the SAE report to the sponsor",
        "susar_initial": "the SUSAR's initial report",
        "susar_complete": "the SUSAR's complete report",
    },
    "fa": {
        "sae_to_sponsor": "گزارش عارضه جدی به حامی",
        "susar_initial": "گزارش اولیه SUSAR",
        "susar_complete": "گزارش کامل SUSAR",
    },
}

#: Each role's name in Persian (English says ``Role.label``), for the two-person rule's messages.
_ROLE_NAMES_FA = {
    "administrator": "مدیر سامانه",
    "investigator": "پژوهشگر",
    "study_coordinator": "هماهنگ‌کنندهٔ مطالعه",
    "outcome_assessor": "ارزیاب پیامد",
    "unblinded_pharmacist": "داروساز آگاه از تخصیص",
    "unblinded_statistician": "آمارگر آگاه از تخصیص",
    "blinded_statistician": "آمارگر ناآگاه از تخصیص",
    "monitor": "پایشگر",
    "data_manager": "مدیر داده",
    "dsmb_member": "عضو کمیتهٔ پایش داده و ایمنی",
    "coder": "کدگذار",
}

_DECISIONS = {
    "en": {"resume": "resume", "pause": "pause", "stop": "stop"},
    "fa": {"resume": "ازسرگیری", "pause": "توقف موقت", "stop": "توقف کامل"},
}

_REQUEST_KINDS = {
    "en": {"create": "create", "reset": "reset", "enable": "enable"},
    "fa": {"create": "ایجاد", "reset": "بازنشانی گذرواژه", "enable": "فعال‌سازی"},
}

_FOOTER = {
    "en": "\n\nSign in to trialwright for the details. This message was sent by trialwright; do not reply to it.",
    "fa": "\n\nبرای جزئیات وارد trialwright شوید. این پیام را trialwright فرستاده است؛ به آن پاسخ ندهید.",
}

# kind -> language -> (subject, body); ``{name}`` fields come from the row's params (and the derived ``what``,
# ``when``, ``decision_text``, ``request_kind`` below).
_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "sae": {
        "en": (
            "Serious adverse event {ae_number} of {participant_id} at {site}",
            "A serious adverse event, {ae_number}, was reported for participant {participant_id} at site {site} "
            "by {reported_by}. The site became aware of it at {when}.",
        ),
        "fa": (
            "عارضه جانبی جدی {ae_number} برای {participant_id} در {site}",
            "عارضه جانبی جدی {ae_number} برای شرکت‌کننده {participant_id} در مرکز {site} توسط {reported_by} "
            "گزارش شد. مرکز در {when} از آن آگاه شد.",
        ),
    },
    "deadline_due_soon": {
        "en": (
            "Due soon: {what} for {ae_number} ({participant_id})",
            "{what_capital} for adverse event {ae_number} of participant {participant_id} at site {site} is due by "
            "{when} and has not been recorded as submitted.",
        ),
        "fa": (
            "مهلت نزدیک است: {what} برای {ae_number} ({participant_id})",
            "مهلت {what} برای عارضه {ae_number} شرکت‌کننده {participant_id} در مرکز {site} تا {when} است و "
            "ارسال آن هنوز ثبت نشده است.",
        ),
    },
    "deadline_overdue": {
        "en": (
            "Overdue: {what} for {ae_number} ({participant_id})",
            "{what_capital} for adverse event {ae_number} of participant {participant_id} at site {site} was due by "
            "{when} and has not been recorded as submitted. It is overdue.",
        ),
        "fa": (
            "مهلت گذشته: {what} برای {ae_number} ({participant_id})",
            "مهلت {what} برای عارضه {ae_number} شرکت‌کننده {participant_id} در مرکز {site} تا {when} بود و "
            "ارسال آن ثبت نشده است. مهلت گذشته است.",
        ),
    },
    "unblinding": {
        "en": (
            "Emergency unblinding of {participant_id} by {unblinded_by}",
            "Participant {participant_id} at site {site} was emergency-unblinded by {unblinded_by} at {when}.\n"
            "Reason given: {reason}\n\nThis message does not say the allocation.",
        ),
        "fa": (
            "رمزگشایی اضطراری {participant_id} توسط {unblinded_by}",
            "تخصیص شرکت‌کننده {participant_id} در مرکز {site} در {when} توسط {unblinded_by} به‌صورت اضطراری "
            "رمزگشایی شد.\nدلیل: {reason}\n\nاین پیام گروه درمانی را نمی‌گوید.",
        ),
    },
    "pause": {
        "en": (
            "Safety pause: new randomizations are paused",
            "{related_saes} related serious adverse events reached the protocol's safety rule at {when}: no new "
            "participant can be randomized until the DSMB decides.",
        ),
        "fa": (
            "توقف ایمنی: تصادفی‌سازی جدید متوقف شد",
            "{related_saes} عارضه جدی مرتبط در {when} به قاعده ایمنی پروتکل رسید: تا تصمیم DSMB هیچ "
            "شرکت‌کننده جدیدی تصادفی‌سازی نمی‌شود.",
        ),
    },
    "decision": {
        "en": (
            "DSMB decision on the safety pause: {decision_text}",
            "The DSMB ({decided_by}) decided at {when}: {decision_text}. New randomizations are {state_text}.",
        ),
        "fa": (
            "تصمیم DSMB درباره توقف ایمنی: {decision_text}",
            "DSMB ({decided_by}) در {when} تصمیم گرفت: {decision_text}. تصادفی‌سازی جدید {state_text}.",
        ),
    },
    "request_made": {
        "en": (
            "Request {request} awaits a second person",
            "{requested_by} asked at {when} to {request_kind} the account {username} ({role}). Under the two-person "
            "rule it waits for a second person to approve or reject it.",
        ),
        "fa": (
            "درخواست {request} منتظر نفر دوم است",
            "{requested_by} در {when} درخواست {request_kind} حساب {username} با نقش {role} را داد. طبق قاعده "
            "دو نفره، این درخواست منتظر تأیید یا رد نفر دوم است.",
        ),
    },
    "request_decided": {
        "en": (
            "Request {request} {state}",
            "The request by {requested_by} to {request_kind} the account {username} ({role}) was {state} by "
            "{decided_by} at {when}.",
        ),
        "fa": (
            "درخواست {request}: {state_text}",
            "درخواست {requested_by} برای {request_kind} حساب {username} با نقش {role} در {when} توسط "
            "{decided_by} {state_text}.",
        ),
    },
}

#: The params the audit trail classes as arm-revealing (``trialwright.domain.audit_masking``: an unblinding's
#: reason): a recipient the trial masks gets ``_WITHHELD`` in their place, as the audit page shows ``masked``.
ARM_REVEALING: dict[str, frozenset[str]] = {"unblinding": frozenset({"reason"})}

_WITHHELD = {
    "en": "masked (shown only to the roles that may see the allocation, as on the audit page)",
    "fa": "پوشیده (فقط برای نقش‌هایی که مجاز به دیدن تخصیص هستند، مانند صفحه ممیزی)",
}

#: Every kind of message.
KINDS = tuple(_TEXTS)

_STATES = {
    "en": {"paused": "paused", "open": "open again", "approved": "approved", "rejected": "rejected"},
    "fa": {"paused": "متوقف است", "open": "دوباره ممکن است", "approved": "تأیید شد", "rejected": "رد شد"},
}


@dataclass(frozen=True)
class Rendered:
    """A message as it is sent: subject, plain-text body and language."""

    subject: str
    body: str
    language: str


def local_time(at: dt.datetime, timezone: str, calendar: str = "gregorian") -> str:
    """A moment on a site's clock with the zone named, its date in the calendar(s) as the pages write it
    (``domain.calendars.format_date``): ``2026-12-04 15:30 Asia/Tehran (+03:30)``, or with ``both``
    ``2026-12-04, 1405/09/13 15:30 Asia/Tehran (+03:30)``."""
    local = at.astimezone(ZoneInfo(timezone))
    return f"{format_date(local.date(), calendar)} {local:%H:%M} {timezone} ({offset_text(local)})"


def _calendar(lang: str, calendar: str | None) -> str:
    """The recipient's calendar preference, as the pages honour it; a Persian message always says the Solar Hijri
    date (with the Gregorian one when the person prefers Gregorian or both)."""
    preference = CalendarPreference(calendar) if calendar else CalendarPreference.GREGORIAN
    if lang == "fa" and preference is CalendarPreference.GREGORIAN:
        return CalendarPreference.BOTH.value
    return preference.value


def _role_name(code: str, lang: str) -> str:
    if lang == "fa":
        return _ROLE_NAMES_FA.get(code, code)
    try:
        return Role(code).label
    except ValueError:
        return code


def render(
    kind: str,
    params: dict[str, Any],
    language: str,
    timezone: str,
    *,
    masked: bool = True,
    calendar: str | None = None,
) -> Rendered:
    """The message of this kind in the language (English when it has none), times on ``timezone``'s clock with
    their dates in the recipient's ``calendar`` (a Persian message always in Solar Hijri, ``_calendar``), roles by
    their names; for a ``masked`` recipient (the default) without the params the audit trail masks."""
    lang = language if language in LANGUAGES else "en"
    subject, body = _TEXTS[kind][lang]
    values = {k: v for k, v in params.items() if isinstance(v, str | int)}
    # numbers (a count, a request's number) and times in the recipient's digits; names and ids as stored
    values.update({k: in_digits(v, lang) for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)})
    if masked:
        values.update({k: _WITHHELD[lang] for k in ARM_REVEALING.get(kind, ()) if k in values})
    when = in_digits(local_time(dt.datetime.fromisoformat(params["at"]), timezone, _calendar(lang, calendar)), lang)
    # a time reads left to right inside right-to-left text (isolated: LRI ... PDI)
    values["when"] = f"\u2066{when}\u2069" if lang in _RTL else when
    if "deadline" in params:
        what = _DEADLINE_NAMES[lang].get(params["deadline"], params["deadline"])
        values["what"], values["what_capital"] = what, what[:1].upper() + what[1:]
    if "decision" in params:
        values["decision_text"] = _DECISIONS[lang].get(params["decision"], params["decision"])
        values["state_text"] = _STATES[lang]["paused" if params.get("paused") else "open"]
    if "request_kind" in params:
        values["request_kind"] = _REQUEST_KINDS[lang].get(params["request_kind"], params["request_kind"])
    if "role" in params:
        values["role"] = _role_name(str(params["role"]), lang)
    if kind == "request_decided":
        values["state_text"] = _STATES[lang].get(params["state"], params["state"])
    return Rendered(subject.format(**values), body.format(**values) + _FOOTER[lang], lang)
