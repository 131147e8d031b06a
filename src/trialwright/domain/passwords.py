"""The password policy: what a new password must be, and the common passwords it must not be.

A password is refused when it is short, of one kind of character, a common password (or one with digits and
symbols added around it, or letters swapped for look-alike digits: ``Password1234``, ``P@ssw0rd!2024``), when
it holds the username or the trial's name, or when it is mostly repeated or sequential characters
(``aaaa``, ``1234``, ``qwerty``). The common passwords are the 10,000 most common of a public list, shipped
as package data (``common_passwords.txt``; its header says where it comes from and under which licence).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources

__all__ = ["MIN_LENGTH", "common_passwords", "password_problem"]

MIN_LENGTH = 12

# Look-alike characters people put in place of letters.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
                       "!": "i", "|": "l", "+": "t"})  # fmt: skip
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz")
# A run of this many repeated or sequential characters counts as filler.
_RUN = 3
# What must remain of a password once its filler is taken out.
_MIN_SUBSTANCE = 8


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped common passwords, lower-case."""
    text = resources.files("trialwright.domain").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _folded(text: str) -> str:
    return text.lower().translate(_LEET)


def _core(text: str) -> str:
    """The password without the digits and symbols added at its ends."""
    return re.sub(r"^[^a-z]+|[^a-z]+$", "", text)


def _is_common(password: str) -> bool:
    common = common_passwords()
    lower = password.lower()
    candidates = {lower, _folded(lower), _core(lower), _core(_folded(lower))}
    # "Password1234": the trailing digits are stripped before the look-alike swap would turn them into letters.
    candidates.add(_folded(_core(lower)))
    candidates.add(_folded(re.sub(r"[^a-z]+$", "", lower)))
    return any(len(c) >= 4 and c in common for c in candidates)


def _sequential(a: str, b: str) -> bool:
    if a == b:
        return True
    for row in _KEYBOARD_ROWS:
        i = row.find(a)
        if i >= 0 and b in (row[i + 1 : i + 2], row[i - 1 : i] if i > 0 else ""):
            return True
    return False


def _substance(password: str) -> int:
    """How many characters are left once runs of repeated or sequential characters are taken out."""
    lower = password.lower()
    filler = [False] * len(lower)
    start = 0
    for i in range(1, len(lower) + 1):
        if i == len(lower) or not _sequential(lower[i - 1], lower[i]):
            if i - start >= _RUN:
                filler[start:i] = [True] * (i - start)
            start = i
    return filler.count(False)


def _names(words: Iterable[str]) -> set[str]:
    out = set()
    for word in words:
        squashed = re.sub(r"[^a-z0-9]", "", word.lower())
        if len(squashed) >= 4:
            out.add(squashed)
    return out


def password_problem(password: str, *, username: str = "", names: Iterable[str] = ()) -> str | None:
    """Why ``password`` may not be used, or None when it may.

    ``names`` are further words a password must not hold: the trial's name, acronym and registry id.
    """
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    kinds = sum(
        any(test(c) for c in password) for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if kinds < 2:
        return "must mix at least two of lower-case, upper-case, digits and symbols"
    squashed = re.sub(r"[^a-z0-9]", "", password.lower())
    folded = re.sub(r"[^a-z0-9]", "", _folded(password))
    if username and any(n in squashed or n in folded for n in _names([username])):
        return "must not contain the username"
    for name in _names(names):
        if name in squashed or name in folded:
            return "must not contain the trial's name or id"
    if _is_common(password):
        return "is a common password (or one with digits or symbols added); choose a less guessable one"
    if _substance(password) < _MIN_SUBSTANCE:
        return "is mostly repeated or sequential characters (like aaaa, 1234 or qwerty); choose a less guessable one"
    return None
