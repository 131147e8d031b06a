"""The names trialwright had before version 0.2.0, when it was called trialkit, and what still reads them.

This module is the one place in the source that spells the old name (a test keeps it so). What reads it:

* environment variables: ``TRIALKIT_<NAME>`` is read when ``TRIALWRIGHT_<NAME>`` is not set, with a
  ``DeprecatedNameWarning`` naming the new variable (``getenv`` here, and ``Settings`` through
  ``LegacyEnvSource``), until version 0.3;
* the embedded database: ``trialkit.db`` in the working folder is never silently replaced by a new, empty
  ``trialwright.db`` (``stale_default_database``: the CLI refuses and says how to rename the file);
* ODM files written before the rename, whose vendor extension has the namespace ``LEGACY_ODM_NS``
  (``trialwright.services.odm_import`` reads both namespaces);
* databases made before the rename, whose automatic queries and entries were recorded by the system actor
  ``trialkit`` (``trialwright.domain.roles.SYSTEM_ACTORS`` holds both names).

Nothing here writes an old name: everything new is written under trialwright's.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "ENV_PREFIX",
    "LEGACY_DATABASE_FILE",
    "LEGACY_ENV_PREFIX",
    "LEGACY_NAME",
    "LEGACY_ODM_NS",
    "LEGACY_SYSTEM_ACTOR",
    "READ_UNTIL",
    "DeprecatedNameWarning",
    "getenv",
    "legacy_value",
    "stale_default_database",
]

#: The project's name until version 0.2.0.
LEGACY_NAME = "trialkit"
#: The version from which the old names are no longer read.
READ_UNTIL = "0.3"

ENV_PREFIX = "TRIALWRIGHT_"
LEGACY_ENV_PREFIX = "TRIALKIT_"

#: The embedded database file the old default URL (``sqlite:///trialkit.db``) made in the working folder.
LEGACY_DATABASE_FILE = "trialkit.db"

#: The namespace of the vendor extension in ODM files written before the rename (prefix ``tk``).
LEGACY_ODM_NS = "https://trialkit.dev/odm"

#: The actor under which the system recorded automatic queries and their closing before the rename.
LEGACY_SYSTEM_ACTOR = "trialkit"


class DeprecatedNameWarning(FutureWarning):
    """An old name (from before the rename) was read; the message names the new one.

    A ``FutureWarning``, not a ``DeprecationWarning``: it is meant for the people who run trialwright, and
    Python shows it to them by default."""


def legacy_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the old variable for ``name`` (the part after the prefix, e.g. ``DATABASE_URL``), when
    the new one is not set; warns naming the new variable. When both are set the new one wins, and the
    warning says the old one is ignored. None when the old one is not set or is ignored."""
    env = os.environ if environ is None else environ
    old, new = LEGACY_ENV_PREFIX + name, ENV_PREFIX + name
    if old not in env:
        return None
    if new in env:
        warnings.warn(
            f"{old} is ignored: {new} is set (the old name is no longer needed; unset it)",
            DeprecatedNameWarning,
            stacklevel=3,
        )
        return None
    warnings.warn(
        f"{old} is deprecated: set {new} instead (the old name is read until trialwright {READ_UNTIL})",
        DeprecatedNameWarning,
        stacklevel=3,
    )
    return env[old]


def getenv(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """``TRIALWRIGHT_<name>``, else the old ``TRIALKIT_<name>`` with a warning naming the new one, else
    ``default``."""
    env = os.environ if environ is None else environ
    if ENV_PREFIX + name in env:
        legacy_value(name, env)  # warns that an old one beside it is ignored
        return env[ENV_PREFIX + name]
    old = legacy_value(name, env)
    return default if old is None else old


def stale_default_database(default: Path) -> Path | None:
    """The old default database beside ``default`` (the embedded database the default URL names) when
    ``default`` is not there: a trial that the default URL would silently replace by a new, empty one.
    None when there is none."""
    old = default.with_name(LEGACY_DATABASE_FILE)
    return old if old.exists() and not default.exists() else None
