"""PostgreSQL as a child process for development and tests (production uses a managed database by URL).

:class:`PostgresServer` runs ``initdb`` into ``state_dir/data`` the first time, then ``postgres`` in the
foreground listening on ``host:port`` (TCP) and on a Unix socket in ``state_dir/run``. Every login needs a
password (scram-sha-256): the superuser ``postgres`` gets a random one at initdb, kept in
``state_dir/superuser.password`` (0600). Once the server accepts connections, the application role and
database are created (or the role's password updated), and :attr:`PostgresServer.url` gives the SQLAlchemy
URL for them.

PostgreSQL refuses to run as root. As root, initdb and postgres run as the ``postgres`` system user (the
child's own PID, no ``su`` in between), ``state_dir`` is handed to that user, and every directory above it
must let that user through (``/tmp/pytest-of-root`` does not: use a directory made with
``tempfile.mkdtemp()``). Otherwise they run as the current user.

Stopping sends SIGINT (PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit). The
postmaster's children each start a session of their own, so the process-group kill of
:class:`~coalesce_cloud.servers.process.ManagedProcess` does not reach them: the postmaster ends them (and
if it is killed, they notice and exit).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import signal
import stat
import subprocess
import urllib.parse
from pathlib import Path

import psycopg
from psycopg import sql

from coalesce_cloud.servers._fs import write_private_file
from coalesce_cloud.servers.errors import (
    ServerCommandError,
    ServerNotInstalledError,
    ServerStartError,
)
from coalesce_cloud.servers.process import (
    DEFAULT_START_TIMEOUT,
    ManagedProcess,
    ServerLifecycle,
    find_executable,
    tcp_port_accepts,
)

log = logging.getLogger(__name__)

POSTGRES_LIB = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
INITDB_TIMEOUT = 120.0
CONNECT_TIMEOUT = 2
UNIX_SOCKET_PATH_MAX = 107


def find_postgres_bin_dir() -> Path:
    """The ``bin`` directory of the newest PostgreSQL under /usr/lib/postgresql, else the one on PATH."""
    versions: list[tuple[int, Path]] = []
    if POSTGRES_LIB.is_dir():
        for entry in POSTGRES_LIB.iterdir():
            if re.fullmatch(r"\d+", entry.name) and (entry / "bin" / "postgres").is_file():
                versions.append((int(entry.name), entry / "bin"))
    if versions:
        return max(versions)[1]
    return find_executable("postgres", package="postgresql").parent


class PostgresServer(ServerLifecycle):
    """One PostgreSQL cluster with one application database and role.

    ``password`` defaults to a random one, kept in ``state_dir/app.password`` (0600) so that a restart on
    the same state directory keeps the URL valid.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        database: str = "coalesce",
        user: str = "coalesce",
        password: str | None = None,
        bin_dir: Path | None = None,
        durable: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.port = port
        self.host = host
        self.database = database
        self.user = user
        self._password = password
        self._bin_dir = bin_dir
        self.durable = durable
        """False turns fsync and synchronous commits off: fast, and fine for throw-away dev/test data."""
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"<PostgresServer {self.host}:{self.port} db={self.database} running={self.running}>"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def password(self) -> str:
        """The application role's password (a secret)."""
        return self._ensure_password()

    def _ensure_password(self) -> str:
        if self._password is None:
            path = self.state_dir / "app.password"
            if path.is_file():
                self._password = path.read_text().strip()
            else:
                self._password = secrets.token_urlsafe(24)
                self.state_dir.mkdir(parents=True, exist_ok=True)
                write_private_file(path, self._password)
        return self._password

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the application database: ``postgresql+psycopg://user:pw@host:port/db``.
        Holds the password: never log it."""
        quote = urllib.parse.quote
        return (
            f"postgresql+psycopg://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{_url_host(self.host)}:{self.port}/{quote(self.database, safe='')}"
        )

    @property
    def conninfo(self) -> str:
        """libpq connection string for the application database (for ``psycopg.connect``); a secret."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, dbname=self.database, user=self.user, password=self.password
        )

    # ----------------------------------------------------------------------------------------- start

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """initdb if needed, start postgres, wait until it accepts a login, and set up role and database."""
        bin_dir = self._bin_dir or find_postgres_bin_dir()
        run_as = self._system_user()
        self._prepare_state_dir(run_as)
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(bin_dir, run_as)
        args = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            self._socket_dir_setting(),
            "-c",
            "logging_collector=off",
            "-c",
            "password_encryption=scram-sha-256",
        ]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self._process = ManagedProcess(
            "postgres",
            args,
            log_path=self.state_dir / "postgres.log",
            cwd=self.state_dir,
            user=run_as,
            stop_signal=signal.SIGINT,
        )
        self._process.start(self._ready, timeout=timeout)
        try:
            self._create_role_and_database()
        except BaseException:
            self._process.stop()
            raise

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError as exc:
            raise ServerNotInstalledError(
                f"there is no {SYSTEM_USER!r} system user to run PostgreSQL as (PostgreSQL refuses root); "
                "install the Debian package postgresql"
            ) from exc
        return SYSTEM_USER

    def _prepare_state_dir(self, run_as: str | None) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._ensure_password()  # writes app.password before ownership is handed over
        if run_as is None:
            os.chmod(self.state_dir, 0o700)
            return
        entry = pwd.getpwnam(run_as)
        for path in (self.state_dir, self.socket_dir, *self.state_dir.glob("*.password")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.state_dir, 0o700)
        blocker = _first_unreachable_ancestor(self.state_dir, entry.pw_uid, entry.pw_gid)
        if blocker is not None:
            raise ServerStartError(
                f"PostgreSQL runs as the {run_as!r} user, which cannot reach {self.state_dir}: {blocker} is "
                f"mode {stat.filemode(blocker.stat().st_mode)}. Use a state directory that user can "
                "reach, e.g. one made with tempfile.mkdtemp()."
            )

    def _initdb(self, bin_dir: Path, run_as: str | None) -> None:
        pwfile = self.state_dir / "superuser.password"
        if not pwfile.is_file():
            write_private_file(pwfile, secrets.token_urlsafe(24))
            if run_as is not None:
                entry = pwd.getpwnam(run_as)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        args = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not self.durable:
            args.append("--no-sync")
        user_kwargs: dict[str, object] = {}
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            user_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        log_path = self.state_dir / "initdb.log"
        with log_path.open("ab") as log_file:
            try:
                result = subprocess.run(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self.state_dir,
                    timeout=INITDB_TIMEOUT,
                    check=False,
                    **user_kwargs,  # type: ignore[call-overload]
                )
            except subprocess.TimeoutExpired as exc:
                raise ServerStartError(
                    f"initdb took more than {INITDB_TIMEOUT:.0f} s; see {log_path}"
                ) from exc
        if result.returncode != 0:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServerStartError(
                f"initdb failed with status {result.returncode}; end of {log_path}:\n{tail}"
            )
        log.info("initialised a PostgreSQL cluster in %s", self.data_dir)

    def _socket_dir_setting(self) -> str:
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path).encode()) > UNIX_SOCKET_PATH_MAX:
            log.info("no Unix socket for PostgreSQL: %s would be too long", socket_path)
            return ""
        return str(self.socket_dir)

    def _superuser_conninfo(self, dbname: str = "postgres") -> str:
        password = (self.state_dir / "superuser.password").read_text().strip()
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=SUPERUSER,
            password=password,
            connect_timeout=CONNECT_TIMEOUT,
        )

    def _ready(self) -> bool:
        if not tcp_port_accepts(self.host, self.port):
            return False
        try:
            with psycopg.connect(self._superuser_conninfo()) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False  # "the database system is starting up"
        return True

    def _create_role_and_database(self) -> None:
        try:
            with psycopg.connect(self._superuser_conninfo(), autocommit=True) as conn:
                # Hash on our side, so the plain password is never in a statement the server could log.
                verifier = conn.pgconn.encrypt_password(
                    self.password.encode(), self.user.encode(), b"scram-sha-256"
                ).decode()
                role = sql.Identifier(self.user)
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)).fetchone()
                verb = sql.SQL("ALTER" if exists else "CREATE")
                conn.execute(
                    sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, role, sql.Literal(verifier))
                )
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if not exists:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.database), role)
                    )
        except psycopg.Error as exc:
            raise ServerCommandError(f"could not create the PostgreSQL role and database: {exc}") from exc

    # ------------------------------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL after a timeout. Safe to call again."""
        if self._process is not None:
            self._process.stop()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _first_unreachable_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The first directory from / down to ``path`` that user ``uid`` (primary group ``gid``) may not
    traverse, judged by mode bits (no ACLs); None when the whole way is open."""
    for directory in [*reversed(path.resolve().parents), path.resolve()]:
        info = directory.stat()
        if info.st_uid == uid:
            needed = stat.S_IXUSR
        elif info.st_gid == gid:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not info.st_mode & needed:
            return directory
    return None
