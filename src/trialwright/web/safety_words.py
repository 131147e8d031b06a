"""The safety tables and the DSMB's line listing in the page's language.

The services name a safety table's lines and groups in English (``Any adverse event``, ``SAE: death``, ``Worst grade
3``, ``Group A``, an arm's English name) and count them as ``n (p%)``; the CSV listing keeps them so. A page says
each line, each group and each count in the viewer's words and digits here: a line by its message id (a criterion
or a grade inside it said in words and digits), a group by its message id (``Group %(letter)s``), an arm by its
name in the page's language (``localized.arm_said``). An arm is only ever said where the service already named it.
"""

from __future__ import annotations

from collections.abc import Callable

from trialwright.protocol import Protocol
from trialwright.web.i18n import N_, translations
from trialwright.web.localized import arm_said, digits

__all__ = ["LINES", "group_said", "line_said"]

#: The safety table's lines as message ids (``domain.safety.table_labels``); ``SAE: <criterion>`` and ``Worst grade
#: <n>`` are said by their pattern.
LINES = {
    "Any adverse event": N_("Any adverse event"),
    "Any serious adverse event": N_("Any serious adverse event"),
    "Related adverse event": N_("Related adverse event"),
    "Related SAE": N_("Related SAE"),
    "SUSAR": N_("SUSAR"),
}
_CRITERION, _GRADE, _GROUP = N_("SAE: %(criterion)s"), N_("Worst grade %(grade)s"), N_("Group %(letter)s")


def line_said(label: str, lang: str) -> str:
    """A safety table's line in ``lang``; a line the page does not know, as the service named it."""
    gettext = translations(lang).gettext
    if label in LINES:
        return gettext(LINES[label])
    if label.startswith("SAE: "):
        return gettext(_CRITERION) % {"criterion": gettext(label.removeprefix("SAE: "))}
    if label.startswith("Worst grade "):
        return gettext(_GRADE) % {"grade": digits(label.removeprefix("Worst grade "), lang)}
    return label


def group_said(grouping: str, group: str, protocol: Protocol | None, lang: str) -> str:
    """A safety table's column in ``lang``: the pooled group in words, an unnamed group (``Group A``) with its
    letter, an arm (only in a table by arm, where the service named it) by its name in ``lang``."""
    gettext: Callable[[str], str] = translations(lang).gettext
    if grouping == "pooled":
        return gettext(group)
    if grouping == "unnamed_groups" and group.startswith("Group "):
        return gettext(_GROUP) % {"letter": group.removeprefix("Group ")}
    if grouping == "by_arm" and protocol is not None:
        return arm_said(protocol, group, lang)
    return group
