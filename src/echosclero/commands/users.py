"""``echosclero users``: create and list the workstation's users (password read from stdin)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "users",
        help="create and list users of the workstation",
        description="Manage users. The password is read from standard input (one line), "
        "e.g. `printf '%%s\\n' \"$PW\" | echosclero users create alice --role physician`.",
    )
    sub = p.add_subparsers(dest="users_command", metavar="ACTION")
    c = sub.add_parser("create", help="create a user; the password is read from stdin")
    c.add_argument("name", help="user name (letters, digits, _ . @ -)")
    c.add_argument("--role", required=True, help="physician, sonographer, nurse, front_desk or admin")
    c.add_argument("--full-name", default="")
    c.add_argument("--database-url", help="overrides ECHOSCLERO_DATABASE_URL")
    c.set_defaults(func=create)
    ls = sub.add_parser("list", help="list users")
    ls.add_argument("--database-url", help="overrides ECHOSCLERO_DATABASE_URL")
    ls.set_defaults(func=list_users)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _engine(args):
    from echosclero.store.db import make_engine
    from echosclero.store.migrate import upgrade

    engine = make_engine(args.database_url)
    upgrade(engine)
    return engine


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            from echosclero.errors import InputError

            raise InputError("the two passwords differ")
        return pw
    return sys.stdin.readline().rstrip("\r\n")


def create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy import select

    from echosclero.api.schemas import UserIn
    from echosclero.api.security import hash_password
    from echosclero.errors import InputError
    from echosclero.store.db import commit, make_sessionmaker
    from echosclero.store.models import AuditEntry, User

    password = _read_password()
    try:
        body = UserIn(username=args.name, password=password, role=args.role, full_name=args.full_name)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(msgs.replace("username:", "name:")) from None
    engine = _engine(args)
    with make_sessionmaker(engine)() as db:
        if db.scalars(select(User).where(User.username == body.username)).first():
            raise InputError(f"user {body.username!r} already exists")
        user = User(
            username=body.username,
            full_name=body.full_name,
            role=body.role.value,
            password_hash=hash_password(body.password),
            active=True,
        )
        db.add(user)
        db.flush()
        db.add(
            AuditEntry(
                username="cli",
                action="create",
                resource="user",
                resource_id=str(user.id),
                method="CLI",
                path="echosclero users create",
                detail={"role": user.role},
            )
        )
        commit(db)  # durable before we say so (group commit on SQLite)
        print(f"created user {user.username} ({user.role}), id {user.id}")
    return 0


def list_users(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from echosclero.store.db import make_sessionmaker
    from echosclero.store.models import User

    with make_sessionmaker(_engine(args))() as db:
        for u in db.scalars(select(User).order_by(User.id)):
            print(f"{u.id}\t{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")
    return 0
