"""appointments, public appointment requests, prior treatments, patient contact details

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

import echosclero.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
    op.create_table(
        "appointment_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("preferred_times", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.Column("created_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["handled_by"], ["users.id"], name=op.f("fk_appointment_requests_handled_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_requests")),
    )
    with op.batch_alter_table("appointment_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointment_requests_status"), ["status"], unique=False)

    op.create_table(
        "prior_treatments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("limb", sa.String(length=10), nullable=False),
        sa.Column("segment", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("treated_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_prior_treatments_created_by_users")),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_prior_treatments_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prior_treatments")),
    )
    with op.batch_alter_table("prior_treatments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prior_treatments_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("start_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("reminder_sent_at", echosclero.store.types.UTCDateTime(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_appointments_created_by_users")),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_appointments_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["appointment_requests.id"],
            name=op.f("fk_appointments_request_id_appointment_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointments_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_appointments_start_at"), ["start_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointments_start_at"))
        batch_op.drop_index(batch_op.f("ix_appointments_patient_id"))

    op.drop_table("appointments")
    with op.batch_alter_table("prior_treatments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prior_treatments_patient_id"))

    op.drop_table("prior_treatments")
    with op.batch_alter_table("appointment_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_requests_status"))

    op.drop_table("appointment_requests")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("phone")
        batch_op.drop_column("email")
