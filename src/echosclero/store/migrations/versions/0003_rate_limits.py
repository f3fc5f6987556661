"""rate-limit hits kept in the database (they hold across server processes); room for the form
"canister_foam" (polidocanol injectable foam from a canister) in plan items and injections

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

import echosclero.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hits")),
    )
    op.create_index("ix_rate_limit_hits_bucket_key_at", "rate_limit_hits", ["bucket", "key", "at"], unique=False)
    for table in ("plan_items", "injections"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "form", existing_type=sa.String(length=10), type_=sa.String(length=20), existing_nullable=False
            )


def downgrade() -> None:
    for table in ("plan_items", "injections"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "form", existing_type=sa.String(length=20), type_=sa.String(length=10), existing_nullable=False
            )
    op.drop_index("ix_rate_limit_hits_bucket_key_at", table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
