"""Alembic migrations of the SQL evidence store.

There is no ``alembic.ini``: :func:`gate.store._migrate.alembic_config` builds
the configuration in code, and :func:`gate.store.open_store` upgrades every
database to the head revision when the service starts.

To add a revision (``NNNN`` is the next number; ``0002`` after ``0001``):

1. Change :mod:`gate.store._schema`.
2. Generate the migration against a database at the current head::

       python - <<'PY'
       from alembic import command
       from gate.store._migrate import alembic_config
       config = alembic_config("sqlite:////tmp/gate-migrate.db")
       command.upgrade(config, "head")
       command.revision(config, message="add widgets", rev_id="NNNN", autogenerate=True)
       PY

   Without ``autogenerate=True`` the file starts empty. Either way, read it:
   spell out every ``op`` call (types as in ``_schema``, ``Key`` columns with
   their PostgreSQL "C" collation), and make ``downgrade`` undo ``upgrade``.
3. Set ``HEAD_REVISION`` in :mod:`gate.store._migrate` to ``"NNNN"``; a test
   fails until it matches Alembic's head, and another until the migrations
   and ``_schema`` agree.

Revisions must be backward compatible with the previous release's code
(add, don't rename or drop in the same release), since during a rolling
update both versions use the schema.
"""
