"""Who may do what: the roles of a vein clinic and the permission table (reviewable data).

Least privilege: the front desk sees demographics and appointments but no clinical record; the admin
manages users and reads the audit log but sees no clinical record; only physicians plan, inject and
override a safety rule.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PERMISSIONS", "Permission", "Role", "can"]


class Role(StrEnum):
    PHYSICIAN = "physician"
    SONOGRAPHER = "sonographer"
    NURSE = "nurse"
    FRONT_DESK = "front_desk"
    ADMIN = "admin"


class Permission(StrEnum):
    PATIENT_READ = "patient:read"  # demographics
    PATIENT_WRITE = "patient:write"
    CLINICAL_READ = "clinical:read"  # exams, scores, candidacy, plans, sessions, follow-up, instructions
    EXAM_WRITE = "exam:write"  # duplex exams, CEAP/VCSS assessments, prior treatments
    CONSENT_WRITE = "consent:write"
    CANDIDACY_WRITE = "candidacy:write"
    PLAN_WRITE = "plan:write"
    SESSION_WRITE = "session:write"  # sessions, injections, test injections
    SESSION_NURSING = "session:nursing"  # observation, compression, closing a session
    FOLLOWUP_WRITE = "followup:write"
    COMPLICATION_WRITE = "complication:write"
    OVERRIDE = "override"  # override a refusing safety rule with a written reason
    APPOINTMENT_READ = "appointment:read"
    APPOINTMENT_WRITE = "appointment:write"
    REQUESTS = "requests"  # the public appointment-request queue
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    TEMPLATES_WRITE = "templates:write"
    AUDIT_READ = "audit:read"
    USERS_MANAGE = "users:manage"


P = Permission
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PHYSICIAN: frozenset(
        {
            P.PATIENT_READ,
            P.PATIENT_WRITE,
            P.CLINICAL_READ,
            P.EXAM_WRITE,
            P.CONSENT_WRITE,
            P.CANDIDACY_WRITE,
            P.PLAN_WRITE,
            P.SESSION_WRITE,
            P.SESSION_NURSING,
            P.FOLLOWUP_WRITE,
            P.COMPLICATION_WRITE,
            P.OVERRIDE,
            P.APPOINTMENT_READ,
            P.APPOINTMENT_WRITE,
            P.RULES_READ,
            P.RULES_WRITE,
            P.TEMPLATES_WRITE,
        }
    ),
    Role.SONOGRAPHER: frozenset(
        {
            P.PATIENT_READ,
            P.CLINICAL_READ,
            P.EXAM_WRITE,
            P.FOLLOWUP_WRITE,
            P.APPOINTMENT_READ,
            P.RULES_READ,
        }
    ),
    Role.NURSE: frozenset(
        {
            P.PATIENT_READ,
            P.PATIENT_WRITE,
            P.CLINICAL_READ,
            P.CONSENT_WRITE,
            P.SESSION_NURSING,
            P.COMPLICATION_WRITE,
            P.APPOINTMENT_READ,
            P.APPOINTMENT_WRITE,
            P.RULES_READ,
            P.TEMPLATES_WRITE,
        }
    ),
    Role.FRONT_DESK: frozenset(
        {
            P.PATIENT_READ,
            P.PATIENT_WRITE,
            P.APPOINTMENT_READ,
            P.APPOINTMENT_WRITE,
            P.REQUESTS,
            P.RULES_READ,
        }
    ),
    Role.ADMIN: frozenset({P.AUDIT_READ, P.USERS_MANAGE, P.RULES_READ}),
}


def can(role: Role | str, permission: Permission) -> bool:
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False
