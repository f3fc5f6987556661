"""clinic safety and the pathway as the seed clinics run it: body weight may be unrecorded (only clinical roles
write it); patient position at the exam and the session, local anaesthetic, access device and needle gauge;
late cancellations and changes recorded with the clinic's policy

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _sqlite_weight_nullable(nullable: bool) -> None:
    """SQLite cannot alter a column, and rebuilding ``patients`` (batch mode) would drop it with foreign keys
    on, which cascades to every patient's record. Removing or restoring a NOT NULL does not change the file
    format, so the table's stored definition is edited instead (the documented ``writable_schema`` way,
    https://www.sqlite.org/lang_altertable.html#otheralter), inside the migration's transaction."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name='patients'").scalar_one()
    strict, loose = "weight_kg FLOAT NOT NULL,", "weight_kg FLOAT,"
    old, new = (strict, loose) if nullable else (loose, strict)
    if old in sql:
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
        conn.exec_driver_sql("PRAGMA writable_schema=ON")
        conn.exec_driver_sql(
            "UPDATE sqlite_master SET sql=? WHERE type='table' AND name='patients'", (sql.replace(old, new, 1),)
        )
        conn.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
        conn.exec_driver_sql("PRAGMA writable_schema=OFF")


def _weight_nullable(nullable: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_weight_nullable(nullable)
    else:
        op.alter_column("patients", "weight_kg", existing_type=sa.Float(), nullable=nullable)


def upgrade() -> None:
    _weight_nullable(True)
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_position", sa.String(length=30), nullable=True))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_position", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("local_anaesthetic", sa.String(length=200), nullable=True))
    with op.batch_alter_table("injections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_device", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("needle_gauge", sa.Integer(), nullable=True))
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("late_change", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("late_change_policy", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_column("late_change_policy")
        batch_op.drop_column("late_change")
    with op.batch_alter_table("injections", schema=None) as batch_op:
        batch_op.drop_column("needle_gauge")
        batch_op.drop_column("access_device")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("local_anaesthetic")
        batch_op.drop_column("patient_position")
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.drop_column("patient_position")
    op.execute("UPDATE patients SET weight_kg = 0 WHERE weight_kg IS NULL")  # 0: no dose passes without a weight
    _weight_nullable(False)
