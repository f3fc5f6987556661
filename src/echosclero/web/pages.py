"""The workstation's pages: Jinja2 templates rendered by the server, filled by a small script layer that
reads and writes through the API (so that every permission check and audit entry is the API's).

A page is shown to a signed-in user whose role holds the page's permission; the navigation lists only
those pages, and the controls on a page that need another permission are left out for roles without it.
Everything is behind the sign-in except ``/login`` and the public appointment request form ``/request``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from fastapi.templating import Jinja2Templates

from echosclero import __version__
from echosclero.api.errors import HTTPProblem
from echosclero.clinic.roles import Permission, can
from echosclero.web.session import COOKIE, csrf_ok, csrf_token, signed_in, token_of

__all__ = ["NAV", "router", "templates"]

P = Permission
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__


def _reference_data() -> dict:
    """What the pages' forms offer (segments, VCSS items, roles), from the clinic modules."""
    from echosclero.clinic.patient import VCSS_ITEMS
    from echosclero.clinic.roles import Role
    from echosclero.clinic.segments import SEGMENTS

    segs = SEGMENTS.values() if isinstance(SEGMENTS, dict) else SEGMENTS
    return {
        "segments": [{"code": s.code, "name": s.name, "type": s.vein_type.value, "system": s.system.value}
                     for s in segs],
        "vcss_items": list(VCSS_ITEMS),
        "roles": [r.value for r in Role],
    }


templates.env.globals["reference"] = _reference_data

router = APIRouter(include_in_schema=False)

#: (path, label, permission) of the main navigation
NAV = [
    ("/patients", "Patients", P.PATIENT_READ),
    ("/calendar", "Calendar", P.APPOINTMENT_READ),
    ("/outcomes", "Outcomes", P.CLINICAL_READ),
    ("/admin/users", "Users", P.USERS_MANAGE),
    ("/admin/audit", "Audit log", P.AUDIT_READ),
]

#: (slug, label, permission) of a patient's tabs
PATIENT_TABS = [
    ("", "Chart", P.PATIENT_READ),
    ("mapping", "Duplex mapping", P.CLINICAL_READ),
    ("candidacy", "Candidacy", P.CLINICAL_READ),
    ("plan", "Plan", P.CLINICAL_READ),
    ("live", "Live procedure", P.CLINICAL_READ),
    ("aftercare", "Aftercare", P.CLINICAL_READ),
]


def _security_headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self' ws: wss:; media-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def render(request: Request, template: str, *, status: int = 200, **context) -> HTMLResponse:
    user = context.pop("user", None)
    token = token_of(request)
    ctx = {
        "user": user,
        "csrf": csrf_token(request.app.state.settings.secret_key, token) if token and user else "",
        "nav": [(href, label) for href, label, perm in NAV if user and can(user.role, perm)],
        "can": (lambda perm: bool(user) and can(user.role, Permission(perm))),
        "path": request.url.path,
        **context,
    }
    return _security_headers(templates.TemplateResponse(request, template, ctx, status_code=status))


def _login_redirect(request: Request) -> RedirectResponse:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(nxt, safe='/')}", status_code=303)


def page(request: Request, template: str, permission: Permission, **context) -> Response:
    """A page behind the sign-in and ``permission`` (a clear refusal page otherwise)."""
    user = signed_in(request)
    if user is None:
        return _login_redirect(request)
    if not can(user.role, permission):
        return render(
            request,
            "error.html",
            user=user,
            status=403,
            title="Not available to your role",
            message=f"Your role ({user.role}) does not have the permission {permission.value} this page needs.",
        )
    return render(request, template, user=user, **context)


def patient_page(request: Request, patient_id: int, slug: str, template: str, permission: Permission,
                 **context) -> Response:
    user = signed_in(request)
    tabs = [(f"/patients/{patient_id}" + (f"/{s}" if s else ""), label)
            for s, label, perm in PATIENT_TABS if user and can(user.role, perm)]
    return page(request, template, permission, patient_id=patient_id, tabs=tabs, tab=slug, **context)


@router.get("/")
def home(request: Request) -> Response:
    user = signed_in(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    first = next((href for href, _l, perm in NAV if can(user.role, perm)), "/login")
    return RedirectResponse(first, status_code=303)


def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/") and not nxt.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_safe_next(next), message="")


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """The API's own sign-in (password check, rate limit, audit), its token kept in an HttpOnly cookie."""
    from echosclero.api.routes.auth import token as api_token

    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin and origin not in (f"http://{host}", f"https://{host}"):
        return render(request, "login.html", status=403, next="/", message="sign-in from another site refused")
    db = request.app.state.sessionmaker()
    try:
        tok = api_token(request, db, OAuth2PasswordRequestForm(username=username, password=password))
    except HTTPProblem as exc:
        return render(request, "login.html", status=exc.status, next=_safe_next(next), message=exc.message,
                      username=username)
    finally:
        db.close()
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        COOKIE,
        tok.access_token,
        max_age=tok.expires_in_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return resp


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    token = token_of(request)
    if token and not csrf_ok(request.app.state.settings.secret_key, token, csrf):
        return render(request, "error.html", status=403, user=signed_in(request), title="Sign-out refused",
                      message="The sign-out form lacked the page's CSRF token; reload the page and try again.")
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return resp


@router.get("/request")
def public_request(request: Request) -> Response:
    """The public appointment request form (no sign-in; posts to /api/public/appointment-requests)."""
    return render(request, "request.html")


@router.get("/patients")
def patients(request: Request) -> Response:
    return page(request, "patients.html", P.PATIENT_READ)


@router.get("/patients/{patient_id}")
def chart(request: Request, patient_id: int) -> Response:
    return patient_page(request, patient_id, "", "chart.html", P.PATIENT_READ)


@router.get("/patients/{patient_id}/mapping")
def mapping(request: Request, patient_id: int) -> Response:
    return patient_page(request, patient_id, "mapping", "mapping.html", P.CLINICAL_READ)


@router.get("/patients/{patient_id}/candidacy")
def candidacy(request: Request, patient_id: int) -> Response:
    return patient_page(request, patient_id, "candidacy", "candidacy.html", P.CLINICAL_READ)


@router.get("/patients/{patient_id}/plan")
def plan(request: Request, patient_id: int) -> Response:
    return patient_page(request, patient_id, "plan", "plan.html", P.CLINICAL_READ)


@router.get("/patients/{patient_id}/live")
def live(request: Request, patient_id: int) -> Response:
    from echosclero.sim import list_scenarios

    return patient_page(request, patient_id, "live", "live.html", P.CLINICAL_READ, scenarios=list_scenarios())


@router.get("/patients/{patient_id}/aftercare")
def aftercare(request: Request, patient_id: int) -> Response:
    return patient_page(request, patient_id, "aftercare", "aftercare.html", P.CLINICAL_READ)


@router.get("/calendar")
def calendar(request: Request) -> Response:
    return page(request, "calendar.html", P.APPOINTMENT_READ)


@router.get("/outcomes")
def outcomes(request: Request) -> Response:
    return page(request, "outcomes.html", P.CLINICAL_READ)


@router.get("/admin/users")
def users(request: Request) -> Response:
    return page(request, "users.html", P.USERS_MANAGE)


@router.get("/admin/audit")
def audit(request: Request) -> Response:
    return page(request, "audit.html", P.AUDIT_READ)
