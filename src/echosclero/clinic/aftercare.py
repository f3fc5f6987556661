"""Aftercare and pre-procedure instructions, generated per patient and regimen from editable templates.

Regimens are data with their sources (shared/CLINICAL.md section 5); the clinic picks one per session and
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
            "clinic regimen example (shared/CLINICAL.md section 5); [trial] Kern 2007 for 3 weeks in C1",
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


DEFAULT_TEMPLATES: dict[str, str] = {
    "pre_procedure": """\
Before your sclerotherapy, {{ patient.given_name }} {{ patient.family_name }}
- Avoid aspirin during the week before the procedure unless your doctor prescribed it (clinic policy).
- Do not apply cream or lotion to your legs on the day.
- Bring your compression stockings\
{% if regimen.stocking_class %} (class {{ regimen.stocking_class }}){% endif %}.
- Wear loose clothing and comfortable shoes; plan to walk for {{ regimen.walk_minutes }} minutes afterwards.
- Tell us about any allergy, pregnancy, new medicines, a recent clot or planned long-distance travel.
Questions: {{ clinic.name }}, {{ clinic.phone }}
""",
    "aftercare": """\
After your sclerotherapy, {{ patient.given_name }} {{ patient.family_name }} ({{ regimen.title }})
- Walk for {{ regimen.walk_minutes }} minutes straight after the treatment, and walk every day.
{% if regimen.bandage_days %}- Keep the bandage on day and night for {{ regimen.bandage_days }} days.
{% endif %}{% if regimen.stocking_days %}- Wear your compression stocking\
{% if regimen.stocking_class %} (class \
{{ regimen.stocking_class }}){% endif %} in the daytime for {{ regimen.stocking_days }} days\
{% if regimen.stocking_first_night %}, and also the first night{% endif %}.
{% endif %}- Raise your legs when you sit; avoid standing still for long periods.
- Avoid strenuous exercise for {{ regimen.exercise_limit_days }} days and sun exposure or sunbeds for \
{{ regimen.sun_limit_days }} days.
- Avoid long-distance travel for {{ regimen.travel_limit_days }} days if you can.
- Tender lumps are common: cool them with ice wrapped in cloth; paracetamol (acetaminophen) helps discomfort.
- Contact us at once for more than mild pain, swelling of the leg, chest pain, breathlessness, or any visual
  or neurological symptom: {{ clinic.name }}, {{ clinic.phone }}. In an emergency call your emergency number.
""",
}

_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=False)
_SAMPLE = {
    "patient": {"given_name": "Ann", "family_name": "Example", "age_years": 50},
    "regimen": asdict(REGIMENS["trunk_foam"]),
    "clinic": {"name": "the clinic", "phone": "000"},
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
            "patient.family_name, patient.age_years, regimen.<field>, clinic.name, clinic.phone"
        ) from None
    return text


@functools.lru_cache(maxsize=32)
def _compiled(text: str) -> jinja2.Template:
    """Compiling a template costs milliseconds; rendering a compiled one, microseconds (thread-safe)."""
    return _env.from_string(text)


def render(text: str, *, patient: dict, regimen: Regimen, clinic: dict) -> str:
    try:
        return _compiled(text).render(patient=patient, regimen=asdict(regimen), clinic=clinic)
    except jinja2.TemplateError as exc:
        raise InputError(f"instruction template does not render: {exc}") from None
