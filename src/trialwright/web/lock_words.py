"""Why no data can change now (``services.lock.frozen``), said on a page in the reader's words: the trial lock
under the word for the trial, a soft lock naming the participant or site, the moment's
date in the reader's calendar (the page's ``fdates_in``) and its time in their digits."""

from __future__ import annotations

from trialwright.protocol import Protocol
from trialwright.web.i18n import N_
from trialwright.web.readiness_words import moments_said
from trialwright.web.wording import PARTICIPANT_INPUTS, SCREENING_INPUTS, page_words, say

#: The trial lock's head, in words (a soft lock's are the participant's and the site's).
_HEADS = {"trial": N_("Trial")}


def frozen_said(message: str | None, protocol: Protocol, lang: str) -> str | None:
    """``message`` (a lock's refusal) in ``lang``; None when nothing is locked."""
    if message is None:
        return None
    values = moments_said(str, lang)  # the date stays ISO here: the page writes it in the reader's calendar
    values["at"] = values["moment"]
    words = page_words(protocol, lang, PARTICIPANT_INPUTS, SCREENING_INPUTS, _HEADS)
    return say([message], words, lang, values_said=values)[0]
