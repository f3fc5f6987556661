"""Aftercare and pre-procedure instructions, generated per patient and regimen from editable templates.

Regimens are data with their sources (docs/clinical.md section 5); the clinic picks one per session and
may edit the templates (Jinja2, rendered in a sandbox with strict undefined variables, so a typo in a
template is refused when it is saved rather than printed to a patient).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from echosclero.errors import InputError

__all__ = ["DEFAULT_TEMPLATES", "REGIMENS", "Regimen", "get_regimen", "render", "validate_template"]


@dataclass(frozen=True, slots=True)
class Regimen:
    code: str
    title: str
    bandage_days: int  # bandage day and night
    stocking_class: int | None  # compression class (ccl) of the medical stocking
    stocking_days: int  # daytime stocking after the bandage
    stocking_first_night: bool
    walk_minutes: int  # walk straight after the procedure
    exercise_limit_days: int
    sun_limit_days: int
    travel_limit_days: int
    source: str


_SRC_OBS = "[label] Varithena; Asclera: walk 10-20 minutes after"
REGIMENS: dict[str, Regimen] = {
    r.code: r
    for r in (
        Regimen(
            "spider",
            "spider veins: stocking 3 days",
            0,
            2,
            3,
            True,
            15,
            2,
            14,
            28,
            f"[label] Asclera: compression 2-3 days for spider veins; {_SRC_OBS}",
        ),
        Regimen(
            "reticular",
            "reticular veins: stocking 7 days",
            0,
            2,
            7,
            True,
            15,
            3,
            14,
            28,
            f"[label] Asclera: compression 5-7 days for reticular veins; {_SRC_OBS}",
        ),
        Regimen(
            "trunk_foam",
            "foam to a trunk: stocking 14 days (first night included)",
            0,
            2,
            14,
            True,
            20,
            7,
            14,
            28,
            f"[label] Varithena: compression 2 weeks; {_SRC_OBS}",
        ),
        Regimen(
            "bandage_then_stocking",
            "bandage 5 days and nights, then stocking 14 days",
            5,
            2,
            14,
            False,
            20,
            7,
            14,
            28,
            "clinic regimen example (the seed clinics' practice); [trial] Kern 2007 for 3 weeks in C1",
        ),
        Regimen(
            "nice_short",
            "stocking up to 7 days",
            0,
            2,
            7,
            True,
            15,
            3,
            14,
            28,
            "[guideline] NICE CG168: compression no longer than 7 days after interventional treatment",
        ),
    )
}


def get_regimen(code: str) -> Regimen:
    try:
        return REGIMENS[code]
    except KeyError:
        raise InputError(f"unknown aftercare regimen {code!r}; valid: {', '.join(REGIMENS)}") from None


#: The seed clinics' instructions (docs/clinical.md section 5; clinic policy), for the printed handout and
#: the API. The clinic edits them (``PUT /api/instruction-templates/{key}``); the regimen fills in the
#: compression, the record fills in the dates. One instruction per line, "- " starting a bullet.
DEFAULT_TEMPLATES: dict[str, str] = {
    "pre_procedure": """\
Before your sclerotherapy, {{ patient.given_name }} {{ patient.family_name }}
{% if dates.procedure %}Your treatment: {{ dates.procedure }}.
{% endif %}\
- Avoid aspirin for a week before the procedure (unless a doctor prescribed it for your heart: then ask us \
first).
- On the day, you will stand for part of the visit: the veins are examined and marked standing.
- Bring a pair of shorts and your compression stocking\
{% if regimen.stocking_class %} (class {{ regimen.stocking_class }}){% endif %}.
- Do not put cream or lotion on your legs on the day.
- If you need to change or cancel the appointment, tell us at least {{ clinic.notice_hours | hours }} \
before.
- Tell us about any allergy, pregnancy, new medicines, a recent clot or planned long-distance travel.
Questions: {{ clinic.name }}{% if clinic.phone %}, {{ clinic.phone }}{% endif %}
""",
    "aftercare": """\
After your sclerotherapy, {{ patient.given_name }} {{ patient.family_name }} ({{ regimen.title }})
- Walk for 10-15 minutes straight away, before you go home.
- For the next 4 hours keep your legs raised, with a short walk every hour.
- Then take 30 minutes of exercise (walking) every day.
{% if regimen.bandage_days %}- Keep the bandage on for {{ regimen.bandage_days }} days and \
{{ regimen.bandage_days }} nights, and keep it dry.
{% endif %}{% if regimen.stocking_days %}- {% if regimen.bandage_days %}Then wear{% else %}Wear{% endif %} \
your {% if regimen.stocking_class == 2 %}medium-strength {% endif %}compression stocking\
{% if regimen.stocking_class %} (class {{ regimen.stocking_class }}){% endif %} in the daytime for \
{{ regimen.stocking_days | weeks }}{% if regimen.stocking_first_night %}, and also the first night{% endif %}.
{% endif %}\
- No strenuous exercise for a few days: the first {{ regimen.exercise_limit_days | days }} after this \
treatment.
- No sun or sunbed on the treated leg for {{ regimen.sun_limit_days | weeks }}.
- No long-distance travel for {{ regimen.travel_limit_days | weeks }}.
- Tender lumps along the vein are common: cool them with ice wrapped in a cloth; paracetamol \
(acetaminophen) helps discomfort.
- Warning signs: call us at once for more than mild pain, swelling of the leg, chest pain, \
breathlessness, or any visual or neurological symptom: {{ clinic.name }}\
{% if clinic.phone %}, {{ clinic.phone }}{% endif %}. In an emergency call your emergency number.
{% if dates.followups %}Your follow-up visits:
{% for f in dates.followups %}- {{ f.date }}: {{ f.purpose }}
{% endfor %}{% endif %}\
""",
}


def _days(n) -> str:
    n = int(n)
    return f"{n} day" if n == 1 else f"{n} days"


def _weeks(n) -> str:
    """Whole weeks read as weeks ("2 weeks"), other spans as days."""
    n = int(n)
    if n >= 7 and n % 7 == 0:
        return "1 week" if n == 7 else f"{n // 7} weeks"
    return _days(n)


def _hours(n) -> str:
    n = float(n)
    return f"{n:g} hours" if n != 1 else "1 hour"


_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=False)
_env.filters.update(days=_days, weeks=_weeks, hours=_hours)
#: Appointment notice (hours) when the caller gives none: the default of rule APPOINTMENT_NOTICE_HOURS.
DEFAULT_NOTICE_HOURS = 48
_SAMPLE = {
    "patient": {"given_name": "Ann", "family_name": "Example", "age_years": 50},
    "regimen": asdict(REGIMENS["trunk_foam"]),
    "clinic": {"name": "the clinic", "phone": "000", "notice_hours": DEFAULT_NOTICE_HOURS},
    "dates": {"procedure": "2026-01-05", "followups": [{"date": "2026-01-19", "purpose": "duplex check"}]},
}
MAX_TEMPLATE_CHARS = 20_000


def validate_template(text: str) -> str:
    """Compile and test-render a template; syntax errors and unknown variables are refused."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise InputError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        _env.from_string(text).render(**_SAMPLE)
    except jinja2.TemplateError as exc:
        raise InputError(
            f"template does not render: {exc}; variables available: patient.given_name, "
            "patient.family_name, patient.age_years, regimen.<field>, clinic.name, clinic.phone, "
            "clinic.notice_hours, dates.procedure, dates.followups (each .date, .purpose); filters days, weeks, "
            "hours"
        ) from None
    return text


@functools.lru_cache(maxsize=32)
def _compiled(text: str) -> jinja2.Template:
    """Compiling a template costs milliseconds; rendering a compiled one, microseconds (thread-safe)."""
    return _env.from_string(text)


def render(text: str, *, patient: dict, regimen: Regimen, clinic: dict, dates: dict | None = None) -> str:
    """Fill a template. ``clinic`` may give ``notice_hours`` (default 48); ``dates`` the procedure date and
    the follow-ups booked (``{"procedure": str, "followups": [{"date", "purpose"}]}``; none by default)."""
    clinic = {"notice_hours": DEFAULT_NOTICE_HOURS} | dict(clinic)
    dates = {"procedure": "", "followups": []} | dict(dates or {})
    try:
        return _compiled(text).render(patient=patient, regimen=asdict(regimen), clinic=clinic, dates=dates)
    except jinja2.TemplateError as exc:
        raise InputError(f"instruction template does not render: {exc}") from None
