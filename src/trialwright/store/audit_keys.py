"""The audit key: a secret held outside the database, attached to the engine that writes the trail.

An insider who holds the database file can recompute every SHA-256 of the chain; without the key they
cannot recompute the HMAC each entry carries. The key lives in a key file (created 0600, never
overwritten) or an environment secret, and reaches ``services.audit.record`` through the engine: the
engine is registered with its ``AuditKey`` when it is made, and a session finds it from its bind.

Default places (when no setting names them):

- SQLite file ``trial.db``: the key ``trial.db.key`` and the anchors ``trial.db.anchors`` beside it;
- PostgreSQL: ``$XDG_DATA_HOME/trialwright/audit/<host>-<port>-<database>[-<schema>].key`` (and ``.anchors``),
  with ``$XDG_DATA_HOME`` defaulting to ``~/.local/share``;
- in-memory SQLite: none.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

__all__ = [
    "AuditKey",
    "AuditKeyError",
    "attach",
    "create_private_file",
    "default_anchor_file",
    "default_key_file",
    "is_checked",
    "key_check",
    "key_of",
    "load_key",
    "mark_checked",
]

_CHECK_LABEL = b"trialwright audit key check v1"
_SETTING = "audit_key_file (TRIALWRIGHT_AUDIT_KEY_FILE) or TRIALWRIGHT_AUDIT_KEY"


class AuditKeyError(Exception):
    """The trail cannot be written or verified with the key at hand (missing, unreadable or not this trial's)."""


@dataclass(frozen=True)
class AuditKey:
    """The key an engine signs with (``secret`` None: none found) and where it was looked for."""

    secret: bytes | None
    where: str
    anchor_file: Path | None = None
    key_file: Path | None = None

    def missing(self) -> AuditKeyError:
        return AuditKeyError(
            f"the audit trail of this trial is keyed, but no audit key was found ({self.where}); "
            f"restore the key file from its backup, or name it with the setting {_SETTING}"
        )

    def wrong(self) -> AuditKeyError:
        return AuditKeyError(
            f"the audit key ({self.where}) is not this trial's key: its check value differs from the one the "
            f"database holds; name the right key with the setting {_SETTING}"
        )


def key_check(secret: bytes) -> str:
    """The value stored in the database to recognise the key: an HMAC of a fixed label, never the key."""
    return hmac.new(secret, _CHECK_LABEL, hashlib.sha256).hexdigest()


def create_private_file(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` readable and writable by its owner only (0600); False if it exists (left untouched)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, content)
    finally:
        os.close(fd)
    return True


def load_key(path: Path, *, create: bool = False, anchor_file: Path | None = None) -> AuditKey:
    """The key in ``path`` (64 hex digits); with ``create``, a new random key is written there first if missing."""
    where = f"key file {path}"
    anchors = anchor_file or default_anchor_file(path)
    if create:
        create_private_file(path, (secrets.token_hex(32) + "\n").encode("ascii"))
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return AuditKey(None, where, anchors, path)
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"cannot read the audit {where}: {exc}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise AuditKeyError(f"the audit {where} does not hold a key (at least 32 hexadecimal digits)")
    return AuditKey(secret, where, anchors, path)


def default_anchor_file(key_file: Path) -> Path:
    """The anchors beside a key file: ``trial.db.key`` -> ``trial.db.anchors``."""
    if key_file.suffix == ".key":
        return key_file.with_suffix(".anchors")
    return key_file.with_name(key_file.name + ".anchors")


def default_key_file(url: str) -> Path | None:
    """Where the key of the database at ``url`` is kept when no setting says otherwise (None: in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).resolve().with_name(Path(database).name + ".key")
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    parts = [parsed.host or "localhost", str(parsed.port or 5432), parsed.database or "postgres"]
    options = str(parsed.query.get("options", ""))
    schema = re.search(r"search_path=([A-Za-z0-9_]+)", options)
    if schema:
        parts.append(schema.group(1))
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]", "_", part) for part in parts)
    return base / "trialwright" / "audit" / f"{name}.key"


_KEYS: weakref.WeakKeyDictionary[Engine, AuditKey] = weakref.WeakKeyDictionary()
_CHECKED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _engine(bind: Any) -> Engine | None:
    if isinstance(bind, Connection):
        bind = bind.engine
    if isinstance(bind, Engine):
        # An engine with execution options (e.g. a read scope's) is a proxy of the engine the key was attached to.
        return cast("Engine", getattr(bind, "_proxied", bind))
    return None


def attach(engine: Engine, key: AuditKey) -> None:
    """Register the key the engine's sessions sign the audit trail with."""
    _KEYS[engine] = key
    _CHECKED.discard(engine)


def key_of(bind: Any) -> AuditKey | None:
    """The key registered for the engine behind ``bind`` (an Engine or Connection), if any."""
    engine = _engine(bind)
    return _KEYS.get(engine) if engine is not None else None


def is_checked(bind: Any) -> bool:
    """Whether this engine's key was already matched against the database's check value."""
    engine = _engine(bind)
    return engine is not None and engine in _CHECKED


def mark_checked(bind: Any) -> None:
    engine = _engine(bind)
    if engine is not None:
        _CHECKED.add(engine)
