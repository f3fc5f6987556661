"""Alembic environment: the engine comes from ``config.attributes['engine']`` or the default URL."""

from __future__ import annotations

from alembic import context

from echosclero.store.db import make_engine
from echosclero.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
