"""DATABASE_URL, parsed once: one or several hosts, in libpq's form or SQLAlchemy's.

A primary with standbys is named by listing every node, as every PostgreSQL tool takes it:

    postgresql://rotor@db1:5432,db2:5432/rotor?target_session_attrs=read-write

SQLAlchemy's URL parser cannot read that netloc (it takes `5432,db2:5432` for a port), so the
hosts are split here, and SQLAlchemy's own multi-host spelling is accepted too:

    postgresql+asyncpg://rotor@/rotor?host=db1:5432&host=db2:5432&target_session_attrs=read-write

A URL with one host (or a Unix socket folder in `?host=/path`, as the embedded server writes it)
is passed through untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
DEFAULT_PORT = 5432
# Rotor writes on every request path that matters: with several hosts it wants the primary.
DEFAULT_SESSION_ATTRS = "read-write"
# What libpq and asyncpg both understand and that can land on a server that takes writes.
WRITABLE_SESSION_ATTRS = ("read-write", "primary", "any")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::(\d*))?$")


@dataclass(frozen=True, slots=True)
class DatabaseAddress:
    """Where the database is: the nodes to try in order, and everything else the URL said."""

    hosts: tuple[tuple[str, int], ...]
    database: str
    user: str | None
    password: str | None
    # Every other query parameter (sslmode, ...), in the URL's order; target_session_attrs apart.
    params: tuple[tuple[str, str], ...]
    target_session_attrs: str | None

    @property
    def multi_host(self) -> bool:
        return len(self.hosts) > 1

    def describe(self) -> str:
        """`db1:5432,db2:5432/rotor`: for messages (never the user or the password)."""
        nodes = ",".join(f"{host}:{port}" for host, port in self.hosts)
        return f"{nodes or 'localhost'}/{self.database}"

    def node_dsn(self, host: str, port: int) -> str:
        """A libpq/asyncpg DSN for one node, with the URL's other parameters."""
        params = list(self.params)
        if self.target_session_attrs is not None:
            params.append(("target_session_attrs", self.target_session_attrs))
        return _render("postgresql", self, f"{_bracket(host)}:{port}", params)

    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy's asyncpg dialect takes (its `?host=h:p&host=h:p` form for several
        hosts, which asyncpg connects to in order)."""
        params = list(self.params)
        if self.multi_host:
            params = [("host", f"{host}:{port}") for host, port in self.hosts] + params
            netloc = ""
        else:
            host, port = self.hosts[0]
            netloc = f"{_bracket(host)}:{port}"
        if self.target_session_attrs is not None:
            params.append(("target_session_attrs", self.target_session_attrs))
        return _render("postgresql+asyncpg", self, netloc, params)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _render(
    scheme: str, address: DatabaseAddress, netloc: str, params: list[tuple[str, str]]
) -> str:
    credentials = ""
    if address.user is not None:
        credentials = quote(address.user, safe="")
        if address.password is not None:
            credentials += ":" + quote(address.password, safe="")
        credentials += "@"
    query = f"?{urlencode(params)}" if params else ""
    return f"{scheme}://{credentials}{netloc}/{quote(address.database, safe='')}{query}"


def _node(text: str, default_port: int | None) -> tuple[str, int]:
    match = _HOST_PORT.match(text.strip())
    if match is None or not match.group(1):
        raise ValueError("host[:port] entries separated by commas")
    host = match.group(1).strip("[]")
    port_text = match.group(2)
    return unquote(host), _port(port_text) if port_text else (default_port or DEFAULT_PORT)


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise ValueError("ports between 1 and 65535")
    return int(text)


def parse_database_url(raw: str) -> DatabaseAddress:
    """Parse `raw`; ValueError (saying what is expected, never echoing the URL) if it is not a
    PostgreSQL URL Rotor can use."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError("a URL of the form postgresql://user:pass@host:port/db")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    query = parse_qsl(parts.query, keep_blank_values=True)
    params: list[tuple[str, str]] = []
    query_hosts: list[str] = []
    query_ports: list[str] = []
    session_attrs: str | None = None
    for name, value in query:
        if name == "host":
            query_hosts.extend(value.split(","))
        elif name == "port":
            query_ports.extend(value.split(","))
        elif name == "target_session_attrs":
            session_attrs = value
        else:
            params.append((name, value))
    hosts = [_node(node, None) for node in hostlist.split(",")] if hostlist else []
    sockets = [host for host in query_hosts if host.startswith("/")]
    if sockets and (hosts or len(query_hosts) > 1):
        raise ValueError("one Unix socket folder in ?host=, and no host before the path")
    if sockets:  # the embedded server's form: a folder, and maybe ?port=
        hosts = [(sockets[0], _port(query_ports[0]) if query_ports else DEFAULT_PORT)]
    elif query_hosts:
        if hosts:
            raise ValueError("the hosts either before the path or in ?host=, not both")
        if query_ports and len(query_ports) != len(query_hosts):
            raise ValueError("as many ports in ?port= as hosts in ?host=")
        hosts = [
            _node(node, _port(query_ports[i]) if query_ports else None)
            for i, node in enumerate(query_hosts)
        ]
    elif query_ports:
        if len(query_ports) != 1:
            raise ValueError("one ?port= per host")
        params.append(("port", query_ports[0]))
    if not hosts:
        hosts = [("localhost", DEFAULT_PORT)]
    if len(hosts) > 1 and session_attrs is None:
        session_attrs = DEFAULT_SESSION_ATTRS
    if session_attrs is not None and session_attrs not in WRITABLE_SESSION_ATTRS:
        raise ValueError("target_session_attrs one of " + ", ".join(WRITABLE_SESSION_ATTRS))
    return DatabaseAddress(
        hosts=tuple(hosts),
        database=unquote(parts.path.lstrip("/")),
        user=unquote(user) if userinfo else None,
        password=unquote(password) if has_password else None,
        params=tuple(params),
        target_session_attrs=session_attrs,
    )
