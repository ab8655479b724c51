"""Alembic migrations of the SQL evidence store (``versions/``, ``env.py``, ``script.py.mako``).

There is no ``alembic.ini``: :func:`gate.store._migrate.alembic_config` builds
the configuration in code. How to add a revision is explained in the
docstring of :mod:`gate.store._migrate`.
"""
