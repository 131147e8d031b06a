"""PostgreSQL test schemas recycled within a test process, instead of dropped and rebuilt for every test.

A test's first trial on PostgreSQL is its process's template trial (``tests.trialfixtures.make_trial``). Building it
in a new schema replays the template's ``pg_dump`` (51 tables, their indexes, constraints and triggers: ~0.5 s of the
server's time) and dropping the schema after the test takes another ~0.3 s. Most tests change only rows, so at the
end of a test (``release``) its schema is compared with the template's shape, and when they are the same it is
renamed to a name no test's URL holds, every table emptied and refilled from the template schema (whose rows no
test ever touches) and every sequence set to the template's value, in one transaction (~0.03 s): the next test's
first trial is that schema, renamed to the name its URL holds (``take``). A schema of another shape (a migration run
down, a column or index added, a trigger disabled) is dropped as before.

What a test sees is the template trial's state exactly: every row (in the template's order), every sequence's value,
the tables, indexes, constraints, triggers and functions the shape's fingerprint covers. A session of an earlier
test still open on the old name finds nothing there once it is renamed, and one still inside a transaction holds
the reset back until it ends (every table is locked first), as it held back the ``DROP SCHEMA`` before.
``tests/spec/store/test_recycled_schemas.py`` checks both: a test's rows, sequence values and audit entries never
reach the next test, and an altered schema is not recycled.
"""

from __future__ import annotations

import atexit
import os
import uuid
from dataclasses import dataclass

__all__ = ["FRESH_SCHEMAS", "KEEP", "add_template", "drop_all", "drop_ready", "release", "take"]

#: Set (to anything but empty or ``0``) to drop every test schema and rebuild the next from the dump, as before
#: recycling: to time the two, or to tell whether a failure needs a recycled schema (a read without ORDER BY,
#: say, that a rebuilt table answers in the order written).
FRESH_SCHEMAS = os.environ.get("TW_TEST_FRESH_SCHEMAS", "") not in {"", "0"}

#: Schemas kept ready per template in a process: a test that makes no trial of its own (it runs ``init`` itself, or
#: makes its trial afresh) hands back one more than it took; beyond this many the oldest is dropped.
KEEP = 2

#: The shape of a schema: its tables and other relations, columns with types and defaults, constraints, indexes,
#: triggers (and whether each is enabled), functions, sequences' parameters, types, rules and row policies; names
#: and definitions only (no OIDs), with the schema's own name taken out, so two schemas of the same shape match.
_SHAPE = r"""
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
SELECT md5(replace(string_agg(part, E'\n' ORDER BY part), %(prefix)s, ''))
FROM (
  SELECT concat_ws(' ', 'class', c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.reloptions, c.relacl)
    FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'column', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT concat_ws(' ', 'constraint', k.conname, pg_get_constraintdef(k.oid))
    FROM pg_constraint k WHERE k.connamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'index', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT CASE WHEN t.tgisinternal  -- a foreign key's own triggers, named by OID: their table, function and state
         THEN concat_ws(' ', 'internal trigger', c.relname, t.tgfoid::regproc, t.tgtype, t.tgenabled)
         ELSE concat_ws(' ', 'trigger', pg_get_triggerdef(t.oid), t.tgenabled) END
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'function', p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc),
                   p.prosecdef, p.provolatile, p.proconfig)
    FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'sequence', c.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax,
                   s.seqmin, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'type', ty.typname, ty.typtype,
                   (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e
                    WHERE e.enumtypid = ty.oid))
    FROM pg_type ty WHERE ty.typnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'rule', c.relname, r.rulename, r.ev_enabled)
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(' ', 'policy', c.relname, pol.polname)
    FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid WHERE c.relnamespace = (SELECT oid FROM ns)
) parts(part)
"""


@dataclass(frozen=True)
class _Template:
    """A template trial's schema (kept until the process ends; no test's URL names it), its shape, and the SQL
    that resets a schema of that shape to its rows and sequences (``_TARGET`` for the schema to reset)."""

    schema: str
    shape: str
    reset: str


#: The name of the schema to reset in a template's ``reset`` SQL.
_TARGET = "tw_schema_to_reset"
#: Per test process: each protocol text's (SHA-256) template, and the schemas ready with its trial (newest last).
_TEMPLATES: dict[str, _Template] = {}
_READY: dict[str, list[str]] = {}
#: Which template each test schema's trial was taken or rebuilt from (a schema of no template: the first one's).
_MADE_FROM: dict[str, str] = {}


def _connect(dsn: str, *, autocommit: bool = False):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(dsn, autocommit=autocommit)


def _shape(conn, schema: str) -> str | None:  # type: ignore[no-untyped-def]
    return conn.execute(_SHAPE, {"schema": schema, "prefix": f"{schema}."}).fetchone()[0]  # type: ignore[no-any-return]


def add_template(dsn: str, sha256: str, schema: str) -> None:
    """Keep ``schema`` (the template trial of the protocol text ``sha256``, made by ``init``) as the source of every
    reset of a schema of its shape, dropped when the process ends."""
    with _connect(dsn) as conn:
        tables = [
            (name, [column for (column,) in conn.execute(
                "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s AND attnum > 0"
                " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", (oid,))])
            for oid, name in conn.execute(
                "SELECT c.oid, quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname", (schema,)).fetchall()
        ]  # fmt: skip
        sequences = [
            name
            for (name,) in conn.execute(
                "SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'S' ORDER BY c.relname",
                (schema,),
            )
        ]
        shape = _shape(conn, schema)
    assert shape is not None and tables
    # The template's triggers (audit_entries is append-only) and foreign keys are not fired while the rows are
    # replaced: the rows are the template's own, already checked when they were written.
    statements = ["SET LOCAL session_replication_role = replica"]
    statements.append("LOCK TABLE " + ", ".join(f'"{_TARGET}".{name}' for name, _ in tables))
    statements += [f'DELETE FROM "{_TARGET}".{name}' for name, _ in tables]
    for name, columns in tables:
        listed = ", ".join(columns)
        statements.append(
            f'INSERT INTO "{_TARGET}".{name} ({listed}) OVERRIDING SYSTEM VALUE'
            f' SELECT {listed} FROM "{schema}".{name} ORDER BY ctid'
        )
    statements += [
        f'SELECT setval(\'"{_TARGET}".{name}\', last_value, is_called) FROM "{schema}".{name}' for name in sequences
    ]
    reset = ";\n".join(statements)
    if not _TEMPLATES:
        atexit.register(drop_all, dsn)  # and at the end of the session (tests/conftest.py), should atexit not run
    _TEMPLATES[sha256] = _Template(schema=schema, shape=shape, reset=reset)
    _READY.setdefault(sha256, [])


def take(dsn: str, schema: str, sha256: str) -> bool:
    """Put a ready schema of this template's trial in the place of the (empty) ``schema``; False when there is
    none ready or ``schema`` is not empty (then the caller builds the trial there)."""
    import psycopg

    _MADE_FROM[schema] = sha256
    ready = _READY.get(sha256)
    if not ready or FRESH_SCHEMAS:
        return False
    pooled = ready.pop()
    try:
        with _connect(dsn) as conn:
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(f'DROP SCHEMA "{schema}"')  # refused unless it is empty
            conn.execute(f'ALTER SCHEMA "{pooled}" RENAME TO "{schema}"')
    except psycopg.Error:
        ready.append(pooled)
        return False
    return True


def release(dsn: str, schema: str) -> None:
    """At the end of the test that used ``schema``: reset it to a template's trial and keep it ready for the next
    test when it has that template's shape, else drop it."""
    import psycopg

    sha256 = _MADE_FROM.pop(schema, None) or next(iter(_TEMPLATES), None)
    template = _TEMPLATES.get(sha256) if sha256 else None
    if template is not None and sha256 is not None and not FRESH_SCHEMAS:
        pooled = f"tw_ready_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        try:
            with _connect(dsn) as conn:
                conn.execute("SET LOCAL synchronous_commit = off")
                same = _shape(conn, schema) == template.shape
                if same:
                    conn.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{pooled}"')
                    conn.execute(template.reset.replace(_TARGET, pooled))  # type: ignore[arg-type]  # our own SQL
        except psycopg.Error:
            same = False  # not reset (a role that may not skip triggers, say): dropped below, as before
        if same:
            ready = _READY[sha256]
            ready.append(pooled)
            while len(ready) > KEEP:
                _drop(dsn, ready.pop(0))
            return
    _drop(dsn, schema)


def _drop(dsn: str, schema: str) -> None:
    with _connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def drop_ready(dsn: str) -> None:
    """Drop every schema kept ready, one by one (each of a schema's objects takes a lock, and the server's lock
    table is shared by all its sessions): the next test's trial is rebuilt from the dump, and recycled after."""
    for ready in _READY.values():
        while ready:
            _drop(dsn, ready.pop())


def drop_all(dsn: str) -> None:
    """At the end of the test process: every ready schema and every template; nothing is recycled after."""
    drop_ready(dsn)
    while _TEMPLATES:
        _drop(dsn, _TEMPLATES.popitem()[1].schema)
