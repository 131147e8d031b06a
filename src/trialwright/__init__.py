"""trialwright: run a randomized controlled trial from its protocol file to its shared data set.

The whole design of a trial lives in one protocol file (see ``trialwright.protocol``); the engine reads
it and holds nothing trial-specific of its own.

As a library (docs/api.md, "Python"): ``trialwright.open_trial(database_url, user)`` opens a trial database
as a named user and reads it through the services (``trialwright.library.OpenTrial``);
``trialwright.load_protocol(path)`` reads and checks a protocol file. Both import their modules only when called,
so ``import trialwright`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from trialwright.library import OpenTrial
    from trialwright.protocol import LoadedProtocol

from trialwright.version import __version__

__all__ = ["__version__", "load_protocol", "open_trial"]


def open_trial(database_url: str, user: str, **options: Any) -> OpenTrial:
    """Open the trial database at ``database_url`` as the active account ``user`` (see
    :func:`trialwright.library.open_trial` for ``password`` and ``settings``)."""
    from trialwright.library import open_trial as opened

    return opened(database_url, user, **options)


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read and check a protocol file; ``ProtocolError`` lists every problem with its line."""
    from pathlib import Path

    from trialwright.protocol import load_protocol as loaded

    return loaded(Path(path))
