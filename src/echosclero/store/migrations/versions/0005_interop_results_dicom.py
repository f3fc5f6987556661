"""issue 14: results of ``analyze``/``reflux`` attached to exams and sessions (with key frames), and the
DICOM instances received by ``echosclero dicom-receive`` (filed under a patient or queued unmatched)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import echosclero.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attached_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("exam_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("leg", sa.String(length=10), nullable=True),
        sa.Column("segment", sa.String(length=20), nullable=True),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_attached_results_created_by_users")),
        sa.ForeignKeyConstraint(
            ["exam_id"], ["exams.id"], name=op.f("fk_attached_results_exam_id_exams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_attached_results_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_attached_results_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attached_results")),
    )
    op.create_index(op.f("ix_attached_results_patient_id"), "attached_results", ["patient_id"], unique=False)
    op.create_index(
        op.f("ix_attached_results_sop_instance_uid"), "attached_results", ["sop_instance_uid"], unique=False
    )
    op.create_table(
        "key_frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("t_s", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["attached_results.id"],
            name=op.f("fk_key_frames_result_id_attached_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_frames")),
    )
    op.create_index(op.f("ix_key_frames_result_id"), "key_frames", ["result_id"], unique=False)
    op.create_table(
        "dicom_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("dicom_patient_id", sa.String(length=64), nullable=False),
        sa.Column("dicom_patient_name", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("n_frames", sa.Integer(), nullable=False),
        sa.Column("calling_ae", sa.String(length=16), nullable=False),
        sa.Column("analysis", sa.JSON(), nullable=True),
        sa.Column("analysis_error", sa.Text(), nullable=True),
        sa.Column("forwarded_at", echosclero.store.types.UTCDateTime(), nullable=True),
        sa.Column("forward_error", sa.Text(), nullable=True),
        sa.Column("received_at", echosclero.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_dicom_instances_patient_id_patients"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_instances")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_dicom_instances_sop_instance_uid")),
    )
    op.create_index(
        op.f("ix_dicom_instances_dicom_patient_id"), "dicom_instances", ["dicom_patient_id"], unique=False
    )
    op.create_index(op.f("ix_dicom_instances_patient_id"), "dicom_instances", ["patient_id"], unique=False)
    op.create_index(op.f("ix_dicom_instances_status"), "dicom_instances", ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("dicom_instances")
    op.drop_table("key_frames")
    op.drop_table("attached_results")
