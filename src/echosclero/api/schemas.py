"""Request and response models. One family per entity: ``...In`` (create), ``...Patch``, ``...Out``.

Input is validated strictly: unknown fields are refused (a misspelt ``liquid_gas_ration`` must not be
silently ignored in a dosing request), strings are bounded and free of control characters and lone
surrogates, numbers are finite, dates lie in plausible ranges, ids fit in 31 bits. Types are strict where
JSON would otherwise be coerced: ``true`` is not a number or an id, and a date or a time is ISO 8601 text,
never a number (``0`` is not 1970-01-01).
"""

from __future__ import annotations

import re
import types
import typing
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from echosclero.clinic import patient as pt
from echosclero.clinic.appointments import AppointmentKind, AppointmentStatus, RequestStatus, check_contact
from echosclero.clinic.candidacy import get_contraindication
from echosclero.clinic.dosing import CANISTER_FOAM_CONCENTRATION_PCT, Agent, Form, Gas, parse_ratio
from echosclero.clinic.followup import ComplicationType, FollowupKind, SegmentOutcome, Severity
from echosclero.clinic.roles import Role
from echosclero.clinic.segments import get_segment
from echosclero.clinic.sessions import AccessDevice, CompressionKind, ObservationOutcome, PatientPosition
from echosclero.clinic.treatments import TreatmentKind
from echosclero.errors import InputError

MAX_ID = 2_147_483_647


def _clean(s: str, *, multiline: bool) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an invalid character (a lone surrogate)") from None
    bad = [c for c in s if (ord(c) < 32 and not (multiline and c in "\n\r\t")) or ord(c) == 127]
    if bad:
        raise ValueError(f"text contains control characters ({', '.join(repr(c) for c in bad[:3])})")
    return s


def _encodable(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an invalid character (a lone surrogate)") from None
    return s


def _line(s: str) -> str:
    return _clean(s, multiline=False)


def _text(s: str) -> str:
    return _clean(s, multiline=True)


def _wrap(fn):
    def inner(v):
        try:
            return fn(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    return inner


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_line)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_line)]
Note = Annotated[str, StringConstraints(max_length=5000), AfterValidator(_text)]
#: A medical record number as scanners and PACS carry it in Patient ID (DICOM LO: 64 characters, no backslash).
Mrn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\\\x00-\x1f\x7f]+$"),
    Field(description="the hospital's medical record number (received DICOM objects are filed by it too)"),
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000), AfterValidator(_text)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
SegmentCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20),
    AfterValidator(_wrap(lambda c: get_segment(c).code)),
]
Ratio = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=10),
    AfterValidator(_wrap(lambda r: "{}:{}".format(*parse_ratio(r)))),
]


def _date_range(lo: date, hi: date):
    def check(d: date) -> date:
        if not lo <= d <= hi:
            raise ValueError(f"date {d.isoformat()} is outside {lo.isoformat()} .. {hi.isoformat()}")
        return d

    return check


def _dt_range(d: datetime) -> datetime:
    if not 2000 <= d.astimezone(UTC).year <= 2100:
        raise ValueError(f"time {d.isoformat()} is outside the years 2000-2100")
    return d.astimezone(UTC)


ClinicalDate = Annotated[date, AfterValidator(_date_range(date(1950, 1, 1), date(2100, 12, 31)))]
BirthDate = Annotated[date, AfterValidator(_date_range(pt.BIRTH_DATE_MIN, date(2100, 12, 31)))]
Moment = Annotated[AwareDatetime, AfterValidator(_dt_range)]
PositiveMl = Annotated[float, Field(gt=0, le=1000)]
Pct = Annotated[float, Field(gt=0, le=100)]
Limb = Literal["left", "right"]
ExamLimb = Literal["left", "right", "both"]
OverrideReason = Annotated[
    Reason | None,
    Field(description="a physician's written reason to override a refusing safety rule (kept in the audit log)"),
]


def _kinds(tp: Any) -> tuple[set, Any]:
    """The scalar types a field annotation accepts, and its element annotation when it is a list."""
    out: set = set()
    item = None
    stack = [tp]
    while stack:
        t = stack.pop()
        origin = typing.get_origin(t)
        if origin is Annotated:
            stack.append(typing.get_args(t)[0])
        elif origin in (typing.Union, types.UnionType):
            stack.extend(typing.get_args(t))
        elif origin is list:
            item = typing.get_args(t)[0]
            out.add(list)
        elif origin is Literal:
            out.update(type(a) for a in typing.get_args(t))
        elif t is AwareDatetime:
            out.add(datetime)
        elif isinstance(t, type):
            out.add(t)
    return out, item


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _strict_value(value: Any, kinds: set) -> str | None:
    """Why ``value`` is refused by a field accepting ``kinds`` (``None``: not refused here)."""
    numeric = bool(kinds & {int, float})
    if isinstance(value, bool):
        if bool not in kinds and numeric:
            return f"expects a number, not {str(value).lower()}"
        return None
    if isinstance(value, int | float) and not numeric:
        if datetime in kinds:
            return "expects a time as ISO 8601 text with its offset (e.g. 2026-03-01T09:30:00+01:00), not a number"
        if date in kinds:
            return "expects a date as text (YYYY-MM-DD), not a number"
    if isinstance(value, str):
        if datetime in kinds and not _ISO_TIME.match(value):
            return f"expects a time as ISO 8601 text (e.g. 2026-03-01T09:30:00+01:00), not {value[:40]!r}"
        if date in kinds and datetime not in kinds and not _ISO_DATE.match(value):
            return f"expects a date as YYYY-MM-DD, not {value[:40]!r}"
    return None


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_types(cls, data: Any) -> Any:
        """``true`` is not a number or an id; a number is not a date (JSON coercions pydantic would accept)."""
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias if field.alias and field.alias in data else name
            if key not in data:
                continue
            kinds, item = _kinds(field.annotation)
            values = [data[key]]
            if isinstance(data[key], list) and item is not None:
                kinds, _ = _kinds(item)
                values = data[key]
            for v in values:
                why = _strict_value(v, kinds)
                if why:
                    raise ValueError(f"{key} {why}")
        return data


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- users and auth ---


class Token(Out):
    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in_s: int


Password = Annotated[str, StringConstraints(min_length=10, max_length=256), AfterValidator(_encodable)]


class UserIn(In):
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{2,64}$")]
    password: Password
    role: Role
    full_name: Short = ""


class UserPatch(In):
    role: Role | None = None
    active: bool | None = None
    password: Password | None = None
    full_name: Short | None = None


class UserOut(Out):
    id: int
    username: str
    full_name: str
    role: str
    active: bool


# --- patients ---


class PatientIn(In):
    family_name: Name
    given_name: Name
    birth_date: BirthDate
    sex: pt.Sex
    weight_kg: Annotated[float, AfterValidator(_wrap(pt.check_weight_kg))] | None = Field(
        None, description="clinical data: written by clinical roles only (needed before any dose)"
    )
    email: Short | None = None
    phone: Short | None = None
    mrn: Mrn | None = None
    notes: Note = Field("", description="clinical notes: written by clinical roles only")

    @field_validator("birth_date")
    @classmethod
    def _not_future(cls, v: date) -> date:
        try:
            return pt.check_birth_date(v, today=date.today())
        except InputError as exc:
            raise ValueError(str(exc)) from None


class PatientPatch(In):
    family_name: Name | None = None
    given_name: Name | None = None
    birth_date: BirthDate | None = None
    sex: pt.Sex | None = None
    weight_kg: Annotated[float, AfterValidator(_wrap(pt.check_weight_kg))] | None = None
    email: Short | None = None
    phone: Short | None = None
    mrn: Mrn | None = None
    notes: Note | None = None
    override_reason: OverrideReason = None


class PatientOut(Out):
    id: int
    family_name: str
    given_name: str
    birth_date: date
    sex: str
    weight_kg: float | None = Field(None, description="null when not recorded, or withheld (see restricted)")
    email: str | None = None
    phone: str | None = None
    mrn: str | None = None
    notes: str | None = Field(None, description="null when withheld (see restricted)")
    created_at: datetime
    restricted: list[str] = Field(
        default_factory=list, description="fields withheld from this role (clinical data); not missing data"
    )
    warnings: list[dict] = []


class ConsentIn(In):
    kind: Literal["sclerotherapy", "foam_sclerotherapy", "photography", "data_processing", "research"]
    given: bool
    signed_on: ClinicalDate
    document_ref: Short = ""


class ConsentOut(Out):
    id: int
    patient_id: int
    kind: str
    given: bool
    signed_on: date
    document_ref: str
    created_at: datetime


class FindingIn(In):
    """One segment of one leg in a duplex vein map (the fields of :class:`echosclero.mapping.model.SegmentFinding`)."""

    segment: SegmentCode
    leg: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10)] = Field(
        description="'left' or 'right' (or 'L'/'R')"
    )
    diameter_mm: Annotated[float, Field(gt=0, le=40)] | None = None
    reflux_ms: Annotated[float, Field(ge=0, le=20_000)] | None = None
    competent: bool | None = Field(None, description="the examiner's verdict; null lets the published cut-off decide")
    occluded: bool = False
    thrombosed: bool = False
    previously_treated: bool = False
    label: Short = Field("", description="a named tributary or a perforator's location (e.g. 'Boyd')")
    note: Note = ""
    incompetent: bool | None = Field(None, description="computed by the server; ignored on input")
    status: Short | None = Field(None, description="computed by the server; ignored on input")


class VeinMapIn(In):
    """A duplex vein map as :class:`echosclero.mapping.model.VeinMap` writes it (``to_json``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)
    schema_: Literal["echosclero.veinmap/1"] = Field("echosclero.veinmap/1", alias="schema")
    findings: list[FindingIn] = Field(default_factory=list, max_length=400)

    def vein_map(self):
        """The validated :class:`~echosclero.mapping.model.VeinMap` (competence against the published reflux
        cut-offs, contradictory findings, one finding per leg, segment and label)."""
        from echosclero.mapping.model import SegmentFinding, VeinMap

        return VeinMap(
            [SegmentFinding(**f.model_dump(exclude={"incompetent", "status"})) for f in self.findings]
        )

    @model_validator(mode="after")
    def _valid(self):
        try:
            self.vein_map()
        except InputError as exc:
            raise ValueError(f"vein map: {exc}") from None
        return self


class ExamIn(In):
    exam_date: ClinicalDate
    limb: ExamLimb
    vein_map: VeinMapIn = Field(
        default_factory=VeinMapIn, description="the duplex vein map (schema echosclero.veinmap/1)"
    )
    findings: Note = ""
    patient_position: PatientPosition | None = Field(
        None, description="position for the mapping: standing (or reverse Trendelenburg) for reflux"
    )

    @model_validator(mode="after")
    def _legs(self):
        if self.limb != "both":
            other = [f for f in self.vein_map.vein_map().findings if f.leg.value != self.limb]
            if other:
                raise ValueError(
                    f"the exam is of the {self.limb} leg but the vein map has findings on the "
                    f"{other[0].leg.value} leg ({other[0].segment}); set limb to 'both' or correct the leg"
                )
        return self


class ExamOut(Out):
    id: int
    patient_id: int
    exam_date: date
    limb: str
    vein_map: dict[str, Any]
    findings: str
    patient_position: str | None = None
    created_by: int | None
    created_at: datetime


class AssessmentIn(In):
    assessed_on: ClinicalDate
    limb: ExamLimb
    ceap: Annotated[
        str, StringConstraints(max_length=80), AfterValidator(_wrap(pt.check_ceap)), StringConstraints(max_length=80)
    ] | None = Field(None, description="CEAP 2020, e.g. 'C2,4aS' or 'C2,4a,S Ep As,p Pr'; stored in canonical form")
    vcss: Annotated[int, Field(ge=0, le=30)] | None = None
    vcss_items: dict[Literal[pt.VCSS_ITEMS], Annotated[int, Field(ge=0, le=3)]] | None = None  # type: ignore
    symptoms: list[Short] = Field(default_factory=list, max_length=50)
    notes: Note = ""

    @model_validator(mode="after")
    def _scores(self):
        if self.vcss is not None or self.vcss_items is not None:
            try:
                self.vcss = pt.check_vcss(self.vcss_items, self.vcss)
            except InputError as exc:
                raise ValueError(str(exc)) from None
        if self.ceap is None and self.vcss is None and not self.symptoms:
            raise ValueError("give at least one of ceap, vcss (or vcss_items), symptoms")
        return self


class AssessmentOut(Out):
    id: int
    patient_id: int
    assessed_on: date
    limb: str
    ceap: str | None
    vcss: int | None
    vcss_items: dict[str, int] | None
    symptoms: list[str]
    notes: str
    created_at: datetime


ContraCode = Annotated[
    str, StringConstraints(max_length=60), AfterValidator(_wrap(lambda c: get_contraindication(c).code))
]


class CandidacyIn(In):
    assessed_on: ClinicalDate
    present: list[ContraCode] = Field(
        default_factory=list,
        max_length=50,
        description="codes of the contraindications present (GET /api/candidacy/checklist); an empty list means none",
    )
    reasoning: Note = ""
    override_reason: OverrideReason = None


class ContraOut(Out):
    code: str
    text: str
    kind: str
    source: str
    foam_only: bool


class CandidacyOut(Out):
    id: int
    patient_id: int
    assessed_on: date
    present: list[str]
    absolute: list[ContraOut]
    relative: list[ContraOut]
    blocks_planning: bool
    reasoning: str
    override_reason: str | None
    created_at: datetime


class TestInjectionIn(In):
    given_on: ClinicalDate
    agent: Agent
    concentration_pct: Pct
    volume_ml: PositiveMl
    observed_minutes: Annotated[float, Field(ge=0, le=24 * 60)] | None = None
    reaction: bool = False
    notes: Note = ""


class TestInjectionOut(Out):
    id: int
    patient_id: int
    given_on: date
    agent: str
    concentration_pct: float
    volume_ml: float
    observed_minutes: float | None
    reaction: bool
    notes: str
    warnings: list[dict] = []


class TreatmentIn(In):
    limb: Limb
    segment: SegmentCode
    kind: TreatmentKind
    treated_on: ClinicalDate | None = None
    notes: Note = ""


class TreatmentOut(Out):
    id: int
    patient_id: int
    limb: str
    segment: str
    kind: str
    treated_on: date | None
    notes: str


# --- plans, sessions, injections ---


class _Prep(In):
    segment: SegmentCode
    agent: Agent
    form: Form
    concentration_pct: Pct
    liquid_gas_ratio: Ratio | None = Field(None, description="liquid:gas, e.g. '1:4'; required for foam only")
    gas: Gas | None = None

    @model_validator(mode="after")
    def _foam(self):
        if self.form is Form.FOAM and self.liquid_gas_ratio is None:
            raise ValueError("liquid_gas_ratio is required for foam (e.g. '1:4')")
        if self.form is Form.LIQUID and (self.liquid_gas_ratio is not None or self.gas is not None):
            raise ValueError("liquid_gas_ratio and gas are only for foam")
        if self.form is Form.CANISTER_FOAM:
            if self.liquid_gas_ratio is not None or self.gas is not None:
                raise ValueError("canister_foam comes with its own gas and ratio: leave liquid_gas_ratio and gas out")
            if self.agent is not Agent.POLIDOCANOL or self.concentration_pct != CANISTER_FOAM_CONCENTRATION_PCT:
                raise ValueError(
                    "canister_foam is polidocanol injectable foam 1% (Varithena): agent polidocanol, "
                    "concentration_pct 1"
                )
        return self


class PlanItemIn(_Prep):
    planned_volume_ml: PositiveMl


class _PrepOut(Out):
    """The preparation, as stored for a plan item or an injection."""

    segment: str
    agent: str
    form: str
    concentration_pct: float
    liquid_gas_ratio: str | None
    gas: str | None


class PlanItemOut(_PrepOut):
    planned_volume_ml: float


class PlanIn(In):
    limb: Limb
    items: list[PlanItemIn] = Field(min_length=1, max_length=50)
    notes: Note = ""
    override_reason: OverrideReason = None


class PlanOut(Out):
    id: int
    patient_id: int
    limb: str
    status: str
    items: list[PlanItemOut]
    notes: str
    warnings: list[dict]
    override_reason: str | None
    created_at: datetime


Anaesthetic = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_line)
]


class SessionIn(In):
    date: ClinicalDate
    limb: Limb
    plan_id: Id | None = None
    started_at: Moment | None = None
    patient_position: PatientPosition | None = Field(None, description="position for the injections (lying)")
    local_anaesthetic: Anaesthetic | None = Field(
        None, description="local anaesthetic used, with strength and volume (e.g. 'lidocaine 1% 2 mL'); 'none'"
    )
    override_reason: OverrideReason = None


class SessionPatch(In):
    started_at: Moment | None = None
    ended_at: Moment | None = None
    observation_minutes: Annotated[float, Field(ge=0, le=24 * 60)] | None = None
    observation_outcome: ObservationOutcome | None = None
    observation_notes: Note | None = None
    compression: CompressionKind | None = None
    stocking_class: Annotated[int, Field(ge=1, le=4)] | None = None
    compression_days: Annotated[int, Field(ge=0, le=120)] | None = None
    regimen: Annotated[str, StringConstraints(max_length=40), AfterValidator(_line)] | None = None
    status: Literal["open", "closed"] | None = None
    patient_position: PatientPosition | None = None
    local_anaesthetic: Anaesthetic | None = None


class InjectionIn(_Prep):
    volume_ml: PositiveMl
    time: Moment | None = Field(None, description="when it was injected (default: now)")
    ultrasound_confirmed: bool | None = Field(None, description="intraluminal position confirmed on ultrasound")
    frame_ref: Short | None = Field(
        None, description="reference to the confirming frame (e.g. a DICOM SOP instance UID and frame number)"
    )
    spread_cm: Annotated[float, Field(ge=0, le=200)] | None = None
    spasm: bool | None = None
    access_device: AccessDevice | None = Field(None, description="needle, butterfly, cannula or catheter")
    needle_gauge: Annotated[int, Field(ge=14, le=34, description="gauge (G) of the needle or cannula")] | None = None
    notes: Note = ""
    override_reason: OverrideReason = None


class InjectionOut(_PrepOut):
    id: int
    session_id: int
    volume_ml: float
    mass_mg: float
    injected_at: datetime
    ultrasound_confirmed: bool | None
    frame_ref: str | None
    spread_cm: float | None
    spasm: bool | None
    access_device: str | None = None
    needle_gauge: int | None = None
    notes: str
    warnings: list[dict]
    override_reason: str | None


class InjectionCreated(InjectionOut):
    session_totals: dict[str, float]
    remaining: dict[str, float]


class SessionOut(Out):
    id: int
    patient_id: int
    plan_id: int | None
    date: date
    limb: str
    operator_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    observation_minutes: float | None
    observation_outcome: str | None
    observation_notes: str
    compression: str | None
    stocking_class: int | None
    compression_days: int | None
    regimen: str | None
    status: str
    patient_position: str | None = None
    local_anaesthetic: str | None = None
    warnings: list[dict]
    totals: dict[str, float] = {}
    remaining: dict[str, float] = {}
    injections: list[InjectionOut] = []


# --- follow-up ---


class FollowupIn(In):
    kind: FollowupKind
    due_on: ClinicalDate
    session_id: Id | None = None
    notes: Note = ""


class OutcomeIn(In):
    limb: Limb
    segment: SegmentCode
    outcome: SegmentOutcome
    diameter_mm: Annotated[float, Field(gt=0, le=50)] | None = None


class FollowupPatch(In):
    status: Literal["scheduled", "done", "missed", "cancelled"] | None = None
    done_on: ClinicalDate | None = None
    dvt_found: bool | None = None
    notes: Note | None = None
    outcomes: list[OutcomeIn] = Field(default_factory=list, max_length=60)


class OutcomeOut(Out):
    limb: str
    segment: str
    outcome: str
    observed_on: date
    diameter_mm: float | None


class FollowupOut(Out):
    id: int
    patient_id: int
    session_id: int | None
    kind: str
    due_on: date
    purpose: str
    rule: str | None
    status: str
    done_on: date | None
    dvt_found: bool | None
    notes: str
    outcomes: list[OutcomeOut] = []


class ComplicationIn(In):
    type: ComplicationType
    severity: Severity
    onset_on: ClinicalDate
    resolved_on: ClinicalDate | None = None
    session_id: Id | None = None
    treatment: Note = ""
    notes: Note = ""


class ComplicationPatch(In):
    severity: Severity | None = None
    resolved_on: ClinicalDate | None = None
    treatment: Note | None = None
    notes: Note | None = None


class ComplicationOut(Out):
    id: int
    patient_id: int
    session_id: int | None
    type: str
    severity: str
    onset_on: date
    resolved_on: date | None
    treatment: str
    notes: str


class ResidualOut(Out):
    limb: str
    segment: str
    outcome: str
    observed_on: date


class InstructionsOut(Out):
    kind: str
    regimen: str
    text: str
    source: str


class TemplateIn(In):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000), AfterValidator(_text)]


class TemplateOut(Out):
    key: str
    body: str
    customised: bool


# --- rules and audit ---


class RuleOut(Out):
    code: str
    title: str
    value: float | bool | None
    default: float | bool | None
    unit: str
    mark: str
    source: str
    citation: str
    enforcement: str
    table: str | None


class RuleValueIn(In):
    value: float | bool
    reason: Reason


class AuditOut(Out):
    id: int
    at: datetime
    user_id: int | None
    username: str
    role: str
    action: str
    resource: str
    resource_id: str | None
    patient_id: int | None
    method: str
    path: str
    client_ip: str
    detail: dict[str, Any]


# --- appointments ---


class AppointmentIn(In):
    patient_id: Id
    kind: AppointmentKind
    start: Moment
    duration_min: Annotated[int, Field(ge=5, le=480)] = 30
    notes: Note = ""
    request_id: Id | None = None


class AppointmentPatch(In):
    start: Moment | None = None
    duration_min: Annotated[int, Field(ge=5, le=480)] | None = None
    kind: AppointmentKind | None = None
    status: Literal["completed", "no_show"] | None = None
    notes: Note | None = None
    override_reason: Annotated[Reason | None, Field(description="reason to reschedule inside the notice period")] = None


class CancelIn(In):
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(_text)
    ]
    override_reason: Annotated[Reason | None, Field(description="reason to cancel inside the notice period")] = None


class AppointmentOut(Out):
    id: int
    patient_id: int
    kind: str
    start: datetime
    duration_min: int
    status: AppointmentStatus
    notes: str
    request_id: int | None
    reminder_sent_at: datetime | None
    cancel_reason: str | None
    override_reason: str | None
    late_change: bool = Field(False, description="cancelled or changed inside the clinic's notice period")
    late_change_policy: str | None = Field(None, description="the clinic's late-change policy, as recorded")
    warnings: list[dict] = []


class PublicRequestIn(In):
    name: Name
    email: Short | None = None
    phone: Short | None = None
    preferred_times: Annotated[str, StringConstraints(max_length=500), AfterValidator(_text)] = ""
    reason: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_text)] = ""
    website: Annotated[str, StringConstraints(max_length=200), AfterValidator(_encodable)] = Field(
        "", description="leave empty (a field people do not see; automated submissions fill it)"
    )

    @model_validator(mode="after")
    def _contact(self):
        try:
            check_contact(self.email or None, self.phone or None)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self


class PublicRequestAck(Out):
    received: bool
    message: str


class RequestOut(Out):
    id: int
    name: str
    email: str | None
    phone: str | None
    preferred_times: str
    reason: str
    status: str
    appointment_id: int | None
    created_at: datetime


class RequestPatch(In):
    status: RequestStatus
    appointment_id: Id | None = None
