"""issue 14: the patient's medical record number (received DICOM objects are filed by it too), how a received
object was filed, and the durable queue of forwards to the PACS (status, peer, attempts, next attempt)

Columns are only added (``ALTER TABLE ... ADD COLUMN``, no batch rebuild: rebuilding ``patients`` on SQLite
would cascade to every patient's record, see 0004).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

import echosclero.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_QUEUE = ("forward_status", "forward_peer", "forward_attempts", "next_forward_at", "matched_by")


def upgrade() -> None:
    op.add_column("patients", sa.Column("mrn", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_patients_mrn"), "patients", ["mrn"], unique=True)
    op.add_column("dicom_instances", sa.Column("matched_by", sa.String(length=20), nullable=True))
    op.add_column("dicom_instances", sa.Column("forward_status", sa.String(length=20), nullable=True))
    op.add_column("dicom_instances", sa.Column("forward_peer", sa.String(length=120), nullable=True))
    op.add_column(
        "dicom_instances", sa.Column("forward_attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("dicom_instances", sa.Column("next_forward_at", echosclero.store.types.UTCDateTime(), nullable=True))
    op.create_index(op.f("ix_dicom_instances_forward_status"), "dicom_instances", ["forward_status"], unique=False)
    # objects of revision 0005 keep what they had: a failed forward is queued again, a delivered one is done
    op.execute("UPDATE dicom_instances SET forward_status = 'forwarded' WHERE forwarded_at IS NOT NULL")
    op.execute("UPDATE dicom_instances SET forward_status = 'retrying', forward_attempts = 1 "
               "WHERE forwarded_at IS NULL AND forward_error IS NOT NULL")
    op.execute("UPDATE dicom_instances SET matched_by = 'record_number' WHERE status = 'filed'")


def downgrade() -> None:
    op.drop_index(op.f("ix_dicom_instances_forward_status"), table_name="dicom_instances")
    op.drop_index(op.f("ix_patients_mrn"), table_name="patients")
    for col in _QUEUE:  # SQLite 3.35+ and PostgreSQL both drop a column in place
        op.execute(f"ALTER TABLE dicom_instances DROP COLUMN {col}")
    op.execute("ALTER TABLE patients DROP COLUMN mrn")
