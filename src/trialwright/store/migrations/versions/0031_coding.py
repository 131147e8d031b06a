"""Medical coding (issue 25 item 5): MedDRA releases, their terms and paths, and each adverse event's coding.

Revision ID: 0031
Revises: 0028
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0031"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meddra_releases",
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("loaded_by", sa.String(64), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_meddra_releases"),
    )
    op.create_table(
        "meddra_terms",
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("level", sa.String(4), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("search_name", sa.String(100), nullable=False),
        sa.Column("pt_code", sa.Integer(), nullable=True),
        sa.Column("current", sa.Boolean(), nullable=True),
        sa.Column("abbrev", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(
            ["version"], ["meddra_releases.version"], name="fk_meddra_terms_version_meddra_releases"
        ),
        sa.PrimaryKeyConstraint("version", "level", "code", name="pk_meddra_terms"),
    )
    op.create_table(
        "meddra_paths",
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("pt_code", sa.Integer(), nullable=False),
        sa.Column("hlt_code", sa.Integer(), nullable=False),
        sa.Column("hlgt_code", sa.Integer(), nullable=False),
        sa.Column("soc_code", sa.Integer(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"], ["meddra_releases.version"], name="fk_meddra_paths_version_meddra_releases"
        ),
        sa.PrimaryKeyConstraint("version", "pt_code", "hlt_code", "hlgt_code", "soc_code", name="pk_meddra_paths"),
    )
    op.create_table(
        "ae_codings",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("dictionary", sa.String(16), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("verbatim", sa.Text(), nullable=False),
        *(
            sa.Column(f"{level}_{what}", sa.Integer() if what == "code" else sa.String(100), nullable=False)
            for level in ("llt", "pt", "hlt", "hlgt", "soc")
            for what in ("code", "name")
        ),
        sa.Column("coded_at", UTCDateTime(), nullable=False),
        sa.Column("coded_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["adverse_events.id"], name="fk_ae_codings_event_id_adverse_events"),
        sa.PrimaryKeyConstraint("event_id", name="pk_ae_codings"),
    )


def downgrade() -> None:
    op.drop_table("ae_codings")
    op.drop_table("meddra_paths")
    op.drop_table("meddra_terms")
    op.drop_table("meddra_releases")
