"""The clinic record: SQLAlchemy 2 models, engine setup and Alembic migrations.

SQLite (WAL) in the user's data folder by default; PostgreSQL through ``ECHOSCLERO_DATABASE_URL``.
Migrations live in ``echosclero/store/migrations`` so that they ship with the package.
"""
