"""Copying a whole trial database to a file and back, while the application may be writing.

SQLite: the online backup API (``sqlite3.Connection.backup``), which copies a consistent snapshot of the pages
however the file is being written (a plain file copy of a live WAL database can miss the committed pages still in
the ``-wal`` file, or catch a page half-written). PostgreSQL: ``pg_dump`` in its custom format, run inside an
exported snapshot so that what the caller reads in that snapshot (the audit head, the counts) is exactly what the
dump holds; ``pg_restore`` loads it into an empty database.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = [
    "DumpError",
    "find_pg_tool",
    "libpq_environment",
    "pg_dump",
    "pg_restore",
    "sqlite_copy",
    "sqlite_path",
]


class DumpError(Exception):
    """A backup or restore step that cannot be done; the message says which and why."""


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///FILE`` URL; an in-memory database has none and is refused."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise DumpError("an in-memory SQLite database has no file to back up or restore into")
    return Path(database)


def sqlite_copy(source: Path, target: Path) -> None:
    """Copy the database ``source`` into ``target`` with the online backup API, as one self-contained file.

    The copy is left in rollback-journal mode (no ``-wal`` beside it), so that its bytes, and so its SHA-256, are
    final when this returns. ``target`` is created 0600 if it does not exist."""
    if not target.exists():
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # every page in one step, under one read snapshot of the source
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def find_pg_tool(name: str) -> Path:
    """``pg_dump`` or ``pg_restore``: on PATH, else the newest under /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)

    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parts[-3]
        return tuple(int(p) for p in part.split(".") if p.isdigit())

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if candidates:
        return Path(candidates[-1])
    raise DumpError(
        f"{name} was not found (neither on PATH nor under /usr/lib/postgresql/*/bin): install the PostgreSQL "
        "client tools of the server's version (e.g. apt-get install postgresql-client) and try again"
    )


def libpq_environment(url: str) -> tuple[dict[str, str], str]:
    """The environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, ...) and database name for the PostgreSQL tools.

    The password goes in the environment of the child process only, never on its command line."""
    parsed = make_url(url)
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", str(parsed.port) if parsed.port else None),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGSSLMODE", parsed.query.get("sslmode")),
    ):
        if isinstance(value, str) and value:
            env[variable] = value
    if not parsed.database:
        raise DumpError("the PostgreSQL URL names no database")
    return env, parsed.database


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise DumpError(f"{what} failed: {lines[0] if lines else f'exit status {done.returncode}'}")


def pg_dump(url: str, target: Path, *, snapshot: str, schema: str) -> None:
    """Dump ``schema`` of the database at ``url``, as seen by the exported ``snapshot``, into ``target``.

    The exporting transaction must stay open until this returns."""
    env, database = libpq_environment(url)
    if not target.exists():
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    command = [
        str(find_pg_tool("pg_dump")),
        "--format=custom",
        f"--snapshot={snapshot}",
        f"--schema={schema}",
        f"--file={target}",
        f"--dbname={database}",
    ]
    _run(command, env, "pg_dump")
    target.chmod(0o600)


def _contents(tool: Path, source: Path, env: dict[str, str], folder: Path) -> Path:
    """The dump's table of contents without the ``public`` schema itself, which every new database already has
    (a dump of the ``public`` schema alone would otherwise stop at "schema public already exists")."""
    done = subprocess.run(  # noqa: S603
        [str(tool), "--list", str(source)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        raise DumpError(f"pg_restore could not read {source.name}: {first}")
    kept = [
        line
        for line in done.stdout.splitlines()
        if not re.search(r"^\d+; \d+ \d+ (SCHEMA - public|COMMENT - SCHEMA public) ", line)
    ]
    listing = folder / "contents.list"
    listing.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return listing


def pg_restore(url: str, source: Path) -> None:
    """Load a custom-format dump into the (empty) database at ``url``; the first error stops it."""
    env, database = libpq_environment(url)
    tool = find_pg_tool("pg_restore")
    with tempfile.TemporaryDirectory() as folder:
        listing = _contents(tool, source, env, Path(folder))
        command = [
            str(tool),
            f"--use-list={listing}",
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            f"--dbname={database}",
            str(source),
        ]
        _run(command, env, "pg_restore")
