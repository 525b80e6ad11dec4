"""user.email_canonical: the address in its canonical form, uniquely indexed; look-alikes found
among existing accounts are flagged (email_collision), reported, and kept reachable.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:50:00.000000

The canonical form is computed in Python (service/domain/emails.py: NFKC and case folding have
no exact PostgreSQL equivalent). Accounts whose canonical forms collide are not merged or
guessed between: each keeps `email_collision = true`, which leaves it out of the unique index and
keeps it reachable by its old rule (its exact address, case-insensitively), until an operator
resolves the group (`rotor migrate` lists the groups and the command to run).

Failure counters keyed by a plain address (login_failure kind "account") are dropped: they are
now keyed by a keyed hash, and they only ever cover one AUTH_LOGIN_WINDOW.
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.domain.emails import lenient_canonical

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("user", sa.Column("email_canonical", sa.Text(), nullable=True))
    op.add_column(
        "user",
        sa.Column("email_collision", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # Registrations wait (reads do not) until this transaction commits: a row inserted by the
    # old code meanwhile would miss both its canonical form and the collision check.
    op.execute('LOCK TABLE "user" IN SHARE ROW EXCLUSIVE MODE')
    if context.is_offline_mode():
        # `rotor migrate --sql` (a script for review): PostgreSQL has no case folding or list of
        # invisible characters, so the script can only approximate; on a database that has
        # users, `rotor migrate` computes the exact forms and reports look-alikes.
        op.execute("-- approximation: run `rotor migrate` on a database with users")
        op.execute('UPDATE "user" SET email_canonical = lower(normalize(btrim(email), NFKC))')
    else:
        _fill_canonical(op.get_bind())
    op.alter_column("user", "email_canonical", nullable=False)
    op.create_index(
        "uq_user_email_canonical",
        "user",
        ["email_canonical"],
        unique=True,
        postgresql_where=sa.text("NOT email_collision"),
    )
    op.create_index(
        "ix_user_email_canonical_collision",
        "user",
        ["email_canonical"],
        postgresql_where=sa.text("email_collision"),
    )
    op.execute("DELETE FROM login_failure WHERE kind = 'account'")


def _fill_canonical(conn: sa.Connection) -> None:
    """Each row's canonical form; every row of a form shared by several is flagged."""
    groups: dict[str, list[str]] = defaultdict(list)
    for row in conn.execute(sa.text('SELECT id, email FROM "user"')):
        groups[lenient_canonical(row.email)].append(str(row.id))
    rows = [(user_id, form, len(ids) > 1) for form, ids in groups.items() for user_id in ids]
    statement = sa.text(
        'UPDATE "user" SET email_canonical = data.form, email_collision = data.collision'
        " FROM unnest(CAST(:ids AS uuid[]), CAST(:forms AS text[]), CAST(:flags AS boolean[]))"
        ' AS data(id, form, collision) WHERE "user".id = data.id'
    )
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        conn.execute(
            statement,
            {
                "ids": [row[0] for row in batch],
                "forms": [row[1] for row in batch],
                "flags": [row[2] for row in batch],
            },
        )


def downgrade() -> None:
    op.drop_index("ix_user_email_canonical_collision", table_name="user")
    op.drop_index("uq_user_email_canonical", table_name="user")
    op.drop_column("user", "email_collision")
    op.drop_column("user", "email_canonical")
    # Keyed hashes mean nothing to the code before this revision.
    op.execute("DELETE FROM login_failure WHERE kind = 'account'")
