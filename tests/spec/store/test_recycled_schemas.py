"""A PostgreSQL test's schema is given to a later test of its process as that test's first trial only after it is
reset to the template trial exactly, and only when its shape is still the template's (``tests/schema_pool.py``).

Rebuilding the template trial in a new schema and dropping it afterwards cost ~1 s a test; a recycled schema costs
~0.1 s. Recycling must not weaken isolation: nothing a test wrote (a row, an audit entry, a sequence's value) may
reach the next test, and a schema whose tables, indexes, triggers or sequences a test altered (a migration run down,
a trigger disabled to tamper with the trail) is dropped, never handed on. Each case plays two tests in a row in one
process: the first's schema released as at the end of a test, the second's first trial made as at its start.

PostgreSQL only: a SQLite test trial is a copied file, never reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from tests import schema_pool
from tests.conftest import POSTGRES_URL, _plain_postgres_dsn, fresh_database, must_have
from tests.trialfixtures import PASSWORD, Trial, in_a_test, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import create_user


def _state(engine: Engine) -> dict[str, list[str]]:
    """Every table's rows (sorted: PostgreSQL may move an updated row) and every sequence's value, by name."""
    with engine.connect() as conn:
        relations = conn.execute(
            text(
                "SELECT quote_ident(relname), relkind FROM pg_class"
                " WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'S') ORDER BY relname"
            )
        ).all()
        return {
            name: [
                str(row[0])
                for row in conn.execute(
                    text(f"SELECT t::text FROM {name} t ORDER BY 1")
                    if kind == "r"
                    else text(f"SELECT last_value || ' ' || is_called FROM {name}")
                )
            ]
            for name, kind in relations
        }


def _shape(engine: Engine) -> list[str]:
    """The schema's columns with their types, its indexes, its own triggers (enabled or not), its sequences' steps."""
    with engine.connect() as conn:
        return [
            str(part)
            for (part,) in conn.execute(
                text(
                    "SELECT concat_ws(' ', c.relname, a.attname, format_type(a.atttypid, a.atttypmod))"
                    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped"
                    " UNION ALL SELECT replace(pg_get_indexdef(i.indexrelid), current_schema() || '.', '')"
                    " FROM pg_index i JOIN pg_class c"
                    " ON c.oid = i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace"
                    " UNION ALL SELECT concat_ws(' ', t.tgname, t.tgenabled) FROM pg_trigger t JOIN pg_class c"
                    " ON c.oid = t.tgrelid WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal"
                    " UNION ALL SELECT concat_ws(' ', c.relname, s.seqincrement) FROM pg_sequence s JOIN pg_class c"
                    " ON c.oid = s.seqrelid WHERE c.relnamespace = current_schema()::regnamespace"
                    " ORDER BY 1"
                )
            )
        ]


def _users_table(engine: Engine) -> int:
    """The OID of the schema's users table: the same table only if the schema is the same one, recycled."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT 'users'::regclass::oid")).scalar_one())


def _add_one_more(engine: Engine) -> None:
    create_user(
        engine, username="one-more", password=PASSWORD, role=Role.DATA_MANAGER, sites=[],
        full_name="One More", actor="test",
    )  # fmt: skip


@pytest.fixture
def postgres(postgres_available: str | None) -> str | None:
    if schema_pool.FRESH_SCHEMAS:
        must_have("schema recycling", "TW_TEST_FRESH_SCHEMAS is set: no schema is recycled in this run")
    return postgres_available


def test_a_tests_rows_sequences_and_audit_entries_never_reach_the_next_test(
    postgres: str | None, tmp_path: Path
) -> None:
    with fresh_database("postgresql", tmp_path, postgres) as first_url:
        first = make_trial(first_url)  # this test's first trial
        template = _state(first.engine)
        first_users = _users_table(first.engine)
        _add_one_more(first.engine)  # a user row, an audit entry, the users' and audit order's sequences moved on
        with first.engine.begin() as conn:
            conn.execute(text("SELECT nextval('randomization_numbers')"))  # as a randomization takes its number
        written = _state(first.engine)
        assert written["users"] != template["users"]
        assert len(written["audit_entries"]) > len(template["audit_entries"])
        moved = [name for name in template if name.endswith("_seq") or name in {"audit_order", "randomization_numbers"}]
        assert [name for name in moved if written[name] != template[name]], "sequences moved on"
        first.engine.dispose()

    in_a_test(True)  # the next test of this process begins
    with fresh_database("postgresql", tmp_path, postgres) as second_url:
        second = make_trial(second_url)
        assert _users_table(second.engine) == first_users, "the next test's trial is the first test's schema, recycled"
        assert _state(second.engine) == template  # every row and sequence as the template trial has them
        assert audit.verify(second.engine).ok
        _add_one_more(second.engine)  # the same user again: refused as a duplicate had the first one stayed
        second.engine.dispose()


@pytest.mark.parametrize(
    "alteration",
    [
        "ALTER TABLE users ADD COLUMN nickname text",
        "CREATE INDEX ix_users_full_name ON users (full_name)",
        "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_no_change",
        "ALTER SEQUENCE randomization_numbers INCREMENT BY 2",
    ],
    ids=["a column added", "an index added", "a trigger disabled", "a sequence's step changed"],
)
def test_a_schema_whose_shape_a_test_altered_is_dropped_not_recycled(
    alteration: str, postgres: str | None, tmp_path: Path
) -> None:
    with fresh_database("postgresql", tmp_path, postgres) as first_url:
        first = make_trial(first_url)
        template, template_shape = _state(first.engine), _shape(first.engine)
        altered_users = _users_table(first.engine)
        with first.engine.begin() as conn:
            conn.execute(text(alteration))
        assert _shape(first.engine) != template_shape
        first.engine.dispose()

    with psycopg.connect(_plain_postgres_dsn(POSTGRES_URL)) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE oid = %s", (altered_users,)).fetchone()
    assert left == (0,), "the altered schema was dropped at the end of its test"

    in_a_test(True)  # the next test of this process begins
    with fresh_database("postgresql", tmp_path, postgres) as second_url:
        second = make_trial(second_url)
        assert _users_table(second.engine) != altered_users
        assert _shape(second.engine) == template_shape
        assert _state(second.engine) == template
        second.engine.dispose()


def _form_pages(engine: Engine) -> int:
    """How many pages the form records' table has on disk (the file's size: no page is read, none pruned)."""
    with engine.connect() as conn:
        size = "pg_relation_size('form_records') / current_setting('block_size')::int"
        return int(conn.execute(text(f"SELECT {size}")).scalar_one())


def test_a_visits_forms_are_read_in_their_order_not_the_order_a_recycled_table_holds_them(
    postgres: str | None, tmp_path: Path
) -> None:
    """A recycled schema's tables are emptied by ``DELETE``, not rebuilt: the pages the previous test filled stay
    with its dead rows, and rows written next go where the server finds room among them, so a read without an
    order may return a visit's forms in another order than they were made, where a rebuilt table returns them as
    written. A save read them so and audited each form's derived values in that order: saves one by one audited
    them in another order than a bulk import of the same rows, which holds them in the order made
    (``tests/spec/forms/test_bulk_import.py`` failed on PostgreSQL in recycled schemas). Production reorders rows
    just as well (an update that finds no room on its page, a vacuum, a restore): the save reads a visit's forms
    in their order (``services.forms.common._visit_forms``)."""
    from tests.spec.forms.conftest import enrolled_ten_days_ago
    from tests.spec.forms.test_bulk_import import head, rows_for, save_one_by_one, stored
    from trialwright.services import forms as svc

    def saved_one_by_one_and_imported(trial: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        slow, fast = enrolled_ten_days_ago(trial), enrolled_ten_days_ago(trial)
        since = head(trial)
        save_one_by_one(trial, rows_for(slow))
        report = svc.import_forms(trial.engine, who(trial, Role.STUDY_COORDINATOR), rows_for(fast), batch=500)
        assert report == svc.ImportReport(5, ())
        return stored(trial, slow, since), stored(trial, fast, since)

    if postgres is None:  # the server answers (else ``fresh_database`` skips the test, or fails it under CI)
        schema_pool.drop_ready(_plain_postgres_dsn(POSTGRES_URL))  # an earlier test's schema, kept, may hold forms
    with fresh_database("postgresql", tmp_path, postgres) as first_url:
        first = make_trial(first_url)
        assert _form_pages(first.engine) == 0, "rebuilt from the template's dump (no form record): no page"
        first_users = _users_table(first.engine)
        one_by_one, imported = saved_one_by_one_and_imported(first)
        assert imported == one_by_one
        first.engine.dispose()

    in_a_test(True)  # the next test of this process begins
    with fresh_database("postgresql", tmp_path, postgres) as second_url:
        second = make_trial(second_url)
        assert _users_table(second.engine) == first_users, "the next test's trial is the first test's schema, recycled"
        assert _form_pages(second.engine) > 0, "no form record (the template's rows) in the pages the first test filled"
        one_by_one, imported = saved_one_by_one_and_imported(second)
        assert imported == one_by_one
        second.engine.dispose()
