"""``POST /api/token`` (OAuth2 password flow), ``/api/users/me`` and user management (admin)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from echosclero.api.deps import DB, Ctx, audit_entry, authenticated, client_ip, settings_of
from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import Need, P, PathId, get_or_404
from echosclero.api.schemas import Token, UserIn, UserOut, UserPatch
from echosclero.api.security import create_token, hash_password, verify_password
from echosclero.store.models import User

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/token", response_model=Token, summary="Sign in (OAuth2 password flow)")
def token(request: Request, db: DB, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    settings = settings_of(request)
    limiter = request.app.state.login_limiter
    key = f"{client_ip(request)}|{form.username[:64]}"
    wait = limiter.hit(key) if limiter.limit else None
    if wait is not None:
        raise HTTPProblem(
            429, f"too many sign-in attempts; retry in {int(wait) + 1} s", {"Retry-After": str(int(wait) + 1)}
        )
    user = db.scalars(select(User).where(User.username == form.username[:64])).first()
    ok = verify_password(user.password_hash if user else None, form.password[:256])
    if not ok or user is None or not user.active:
        db.add(audit_entry(request, None, "login_failed", "token", username=form.username[:64]))
        db.commit()
        raise HTTPProblem(401, "wrong username or password", {"WWW-Authenticate": "Bearer"})
    db.add(audit_entry(request, user, "login", "token"))
    db.commit()
    return Token(
        access_token=create_token(
            user_id=user.id, role=user.role, secret=settings.secret_key, minutes=settings.token_minutes
        ),
        role=user.role,
        expires_in_s=settings.token_minutes * 60,
    )


@router.get("/users/me", response_model=UserOut, tags=["users"])
def me(ctx: Annotated[Ctx, Depends(authenticated)]):
    return ctx.user


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(ctx: Need(P.USERS_MANAGE)):
    ctx.audit("read", "users")
    ctx.commit()
    return ctx.db.scalars(select(User).order_by(User.id)).all()


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(body: UserIn, ctx: Need(P.USERS_MANAGE)):
    if ctx.db.scalars(select(User).where(User.username == body.username)).first():
        raise HTTPProblem(409, f"user {body.username!r} exists")
    user = User(
        username=body.username,
        full_name=body.full_name,
        role=body.role.value,
        password_hash=hash_password(body.password),
        active=True,
    )
    ctx.db.add(user)
    ctx.db.flush()
    ctx.audit("create", "user", user.id, role_given=user.role)
    ctx.commit()
    return user


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(user_id: PathId, body: UserPatch, ctx: Need(P.USERS_MANAGE)):
    user = get_or_404(ctx, User, user_id, "user")
    changed = body.model_dump(exclude_unset=True, exclude_none=True)
    if "role" in changed:
        user.role = body.role.value
    if "active" in changed:
        user.active = body.active
    if "full_name" in changed:
        user.full_name = body.full_name
    if "password" in changed:
        user.password_hash = hash_password(body.password)
    ctx.audit("update", "user", user.id, fields=sorted(changed))
    ctx.commit()
    return user
