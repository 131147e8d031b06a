"""E-mails in Persian write their numbers in Persian digits (issue 24 item 6): the count of a safety pause, the
request's number and every time, in the recipient's language; the time isolated left to right (LRI ... PDI) so its
date, clock and zone read in order inside right-to-left text. English messages keep Latin digits, and names and
identifiers (a participant id) stay as stored in both."""

from __future__ import annotations

import unicodedata

from trialwright.services.email.messages import render

PAUSE = {"related_saes": 3, "at": "2026-12-04T11:05:00+00:00"}


def _digit_names(text: str) -> set[str]:
    """The Unicode names of the digits in ``text``, without their values (read by ``unicodedata``)."""
    return {unicodedata.name(c).rsplit(" ", 1)[0] for c in text if unicodedata.category(c) == "Nd"}


def test_a_persian_safety_pause_message_has_persian_digits_only() -> None:
    m = render("pause", PAUSE, "fa", "Asia/Tehran")
    assert _digit_names(m.subject + m.body) == {"EXTENDED ARABIC-INDIC DIGIT"}
    # 3 SAEs; 11:05 UTC is 14:35 in Tehran (+03:30 in December), on 2026-12-04
    assert m.body.startswith("۳ عارضه")
    # with no calendar preference given, a Persian message says the Solar Hijri date beside the Gregorian one
    assert "\u2066۲۰۲۶-۱۲-۰۴, ۱۴۰۵/۰۹/۱۳ ۱۴:۳۵ Asia/Tehran (+۰۳:۳۰)\u2069" in m.body


def test_the_same_message_in_english_keeps_latin_digits() -> None:
    m = render("pause", PAUSE, "en", "Asia/Tehran")
    assert _digit_names(m.subject + m.body) == {"DIGIT"}
    assert m.body.startswith("3 related") and "2026-12-04 14:35 Asia/Tehran (+03:30)" in m.body
    assert "\u2066" not in m.body


def test_a_request_number_is_in_persian_digits_and_a_username_as_stored() -> None:
    params = {"request": 12, "request_kind": "create", "role": "monitor", "username": "monitor2",
              "requested_by": "admin", "at": "2026-12-04T11:05:00+00:00"}  # fmt: skip
    m = render("request_made", params, "fa", "Asia/Tehran")
    assert m.subject == "درخواست ۱۲ منتظر نفر دوم است"
    assert "monitor2" in m.body  # an account's name is an identifier, written as it is typed at sign-in
