"""The workstation's pages: Jinja2 templates rendered by the server, filled by a small script layer that
reads and writes through the API (so that every permission check and audit entry is the API's).

A page is shown to a signed-in user whose role holds the page's permission; the navigation lists only
those pages, and the controls on a page that need another permission are left out for roles without it.
Everything is behind the sign-in except ``/login`` and the public appointment request form ``/request``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from echosclero import __version__
from echosclero.api.errors import HTTPProblem
from echosclero.clinic.roles import Permission, can
from echosclero.web.session import COOKIE, csrf_ok, csrf_token, signed_in, token_of

__all__ = ["NAV", "render", "routes", "templates"]

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


def home(request: Request) -> Response:
    user = signed_in(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    first = next((href for href, _l, perm in NAV if can(user.role, perm)), "/login")
    return RedirectResponse(first, status_code=303)


def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/") and not nxt.startswith("//") else "/"


def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_safe_next(request.query_params.get("next")), message="")


async def login(request: Request) -> Response:
    """The API's own sign-in (password check, rate limit, audit), its token kept in an HttpOnly cookie."""
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    nxt = _safe_next(str(form.get("next", "/"))[:500])
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin and origin not in (f"http://{host}", f"https://{host}"):
        return render(request, "login.html", status=403, next="/", message="sign-in from another site refused")
    if not username or not password:
        return render(request, "login.html", status=422, next=nxt, message="give your user name and password",
                      username=username)
    return await run_in_threadpool(_sign_in, request, username, password, nxt)


def _sign_in(request: Request, username: str, password: str, nxt: str) -> Response:
    from echosclero.api.routes.auth import token as api_token

    db = request.app.state.sessionmaker()
    try:
        tok = api_token(request, db, OAuth2PasswordRequestForm(username=username, password=password))
    except HTTPProblem as exc:
        return render(request, "login.html", status=exc.status, next=nxt, message=exc.message, username=username)
    finally:
        db.close()
    resp = RedirectResponse(nxt, status_code=303)
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


async def logout(request: Request) -> Response:
    form = await request.form()
    token = token_of(request)
    if token and not csrf_ok(request.app.state.settings.secret_key, token, str(form.get("csrf", ""))[:200]):
        user = await run_in_threadpool(signed_in, request)
        return render(request, "error.html", status=403, user=user, title="Sign-out refused",
                      message="The sign-out form lacked the page's CSRF token; reload the page and try again.")
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return resp


def public_request(request: Request) -> Response:
    """The public appointment request form (no sign-in; posts to /api/public/appointment-requests)."""
    return render(request, "request.html")


def _simple(template: str, permission: Permission):
    def endpoint(request: Request) -> Response:
        return page(request, template, permission)

    return endpoint


def _patient(slug: str, template: str, permission: Permission):
    def endpoint(request: Request) -> Response:
        extra = {}
        if slug == "live":
            from echosclero.sim import list_scenarios

            extra["scenarios"] = list_scenarios()
        return patient_page(request, request.path_params["patient_id"], slug, template, permission, **extra)

    return endpoint


#: The pages (plain Starlette routes: not part of the API or its OpenAPI document)
routes = [
    Route("/", home),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/request", public_request),
    Route("/patients", _simple("patients.html", P.PATIENT_READ)),
    Route("/patients/{patient_id:int}", _patient("", "chart.html", P.PATIENT_READ)),
    *[
        Route(f"/patients/{{patient_id:int}}/{slug}", _patient(slug, f"{slug}.html", P.CLINICAL_READ))
        for slug in ("mapping", "candidacy", "plan", "live", "aftercare")
    ],
    Route("/calendar", _simple("calendar.html", P.APPOINTMENT_READ)),
    Route("/outcomes", _simple("outcomes.html", P.CLINICAL_READ)),
    Route("/admin/users", _simple("users.html", P.USERS_MANAGE)),
    Route("/admin/audit", _simple("audit.html", P.AUDIT_READ)),
]
