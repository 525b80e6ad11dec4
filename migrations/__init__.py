"""Rotor's Alembic migrations, shipped in the wheel as the package `rotor_migrations`.

`rotor migrate` finds this folder with importlib.resources; `alembic upgrade head` in a checkout
finds it through alembic.ini. Alembic loads env.py and the revisions by path, not by import.
"""
