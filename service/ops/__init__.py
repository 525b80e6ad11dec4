"""Operations: the embedded PostgreSQL, worker processes, migrations, logs, metrics plumbing and
the user import. Used by the command line and by the app wiring; never by a flow."""
