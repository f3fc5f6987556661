"""``POST /api/token`` (OAuth2 password flow), ``/api/users/me`` and user management (admin)."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from echosclero.api.deps import DB, Ctx, CurrentUser, audit_row, authenticated, client_ip, insert_audit, settings_of
from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import Need, P, PathId, api_router, apply_changes, create, get_or_404
from echosclero.api.schemas import Token, UserIn, UserOut, UserPatch
from echosclero.api.security import create_token, hash_password, verify_password
from echosclero.store.db import commit
from echosclero.store.models import User

router = api_router("auth")


@router.post("/token", response_model=Token, summary="Sign in (OAuth2 password flow)")
def token(request: Request, db: DB, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """Password hashing (argon2id, tens of ms by design) happens here and only here: every other request
    carries the signed token this returns. The password is checked outside any database transaction."""
    settings = settings_of(request)
    limiter, account = request.app.state.login_limiter, request.app.state.login_account_limiter
    name = form.username[:64]
    key = f"{client_ip(request)}|{name}"
    # per address and name, and per name from every address (a lock that lifts as the window slides)
    waits = [w for w in (limiter.check(db, key), account.check(db, name)) if w is not None]
    wait = max(waits) if waits else None
    user = None
    if wait is None:
        user = db.execute(
            select(User.id, User.username, User.full_name, User.role, User.active, User.password_hash).where(
                User.username == name
            )
        ).first()
    db.rollback()  # release the connection (the only one, on SQLite) before the slow password check
    if wait is not None:
        insert_audit(db, [audit_row(request, None, "login_refused", "token", username=name, status=429)])
        commit(db)
        request.state.audited = True
        raise HTTPProblem(
            429, f"too many failed sign-ins; retry in {int(wait) + 1} s", {"Retry-After": str(int(wait) + 1)}
        )
    ok = verify_password(user.password_hash if user else None, form.password[:256])
    if not ok or user is None or not user.active:
        limiter.record(db, key)
        account.record(db, name)
        insert_audit(db, [audit_row(request, None, "login_failed", "token", username=name, status=401)])
        commit(db)
        request.state.audited = True
        raise HTTPProblem(401, "wrong username or password", {"WWW-Authenticate": "Bearer"})
    who = CurrentUser(user.id, user.username, user.full_name, user.role, user.active)
    insert_audit(db, [audit_row(request, who, "login", "token")])
    commit(db)
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
    rows = ctx.db.scalars(select(User).order_by(User.id)).all()
    ctx.audit("read", "users", count=len(rows))
    ctx.commit()
    return rows


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(body: UserIn, ctx: Need(P.USERS_MANAGE)):
    if ctx.db.scalars(select(User.id).where(User.username == body.username)).first() is not None:
        raise HTTPProblem(409, f"user {body.username!r} exists")
    ctx.release()  # hashing takes tens of ms: not while holding the database
    user = User(
        username=body.username,
        full_name=body.full_name,
        role=body.role.value,
        password_hash=hash_password(body.password),
        active=True,
    )
    return create(ctx, user, resource="user", role_given=user.role)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(user_id: PathId, body: UserPatch, ctx: Need(P.USERS_MANAGE)):
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if user_id == ctx.user.id and ({"role", "active"} & set(changes)):
        ctx.audit("denied", "user", user_id, needed="another user's approval", fields=sorted(changes))
        ctx.commit()
        raise HTTPProblem(
            403, "you may not change your own role or disable yourself; another user manager must do it"
        )
    if "password" in changes:
        ctx.release()  # hashing takes tens of ms: not while holding the database
        changes["password_hash"] = hash_password(changes.pop("password"))
    user = get_or_404(ctx, User, user_id, what="user")
    before = {k: getattr(user, k) for k in ("role", "active", "full_name")}
    fields = apply_changes(user, changes)
    values = {k: {"old": before[k], "new": getattr(user, k)} for k in before if before[k] != getattr(user, k)}
    ctx.audit(
        "update",
        "user",
        user.id,
        fields=["password" if f == "password_hash" else f for f in fields],
        changes=values,  # never the password or its hash
    )
    ctx.commit()
    return user
