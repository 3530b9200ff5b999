"""A throwaway PostgreSQL server with pgvector, from the binaries of the `pgserver` wheel
(a development dependency): the tests, the benchmarks and anyone trying a shared index
start one in a folder of their own. It listens on a Unix socket only, trusts local
connections, and is kept small (the machines it runs on are shared)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote


def binaries() -> Path | None:
    """Where pgserver's PostgreSQL programs are, or None when it is not installed."""
    try:
        import pgserver  # noqa: F401  (only to find its files)
    except ImportError:
        return None
    import pgserver._commands as commands

    return Path(commands.POSTGRES_BIN_PATH)


class LocalServer:
    """initdb + pg_ctl start in a folder of its own under the system's temporary folder
    (short, for the socket path's limit of about 100 bytes), removed by stop();
    `url` connects as the superuser `postgres`. PostgreSQL refuses to run as root: under
    root (containers, CI) the server runs as the unprivileged user `nobody`."""

    def __init__(
        self, *, shared_buffers: str = "32MB", durable: bool = False, base: Path | None = None
    ) -> None:
        found = binaries()
        if found is None:
            raise RuntimeError("pgserver is not installed: pip install 'localsearch[dev]'")
        self.bin = found
        self.base = Path(tempfile.mkdtemp(prefix="lspg-", dir=base))
        self.datadir = self.base / "data"
        self.socket_dir = self.base
        self.log = self.base / "server.log"
        self.shared_buffers = shared_buffers
        self.durable = durable
        self._user: str | None = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            import pwd

            self._user = "nobody"
            entry = pwd.getpwnam(self._user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
            os.chmod(self.base, 0o755)

    def _run(self, program: str, *args: str) -> None:
        try:
            subprocess.run(
                [str(self.bin / program), *args],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=120,
                user=self._user,
                cwd=self.base,
            )
        except subprocess.CalledProcessError as exc:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {exc.stderr.decode(errors='replace')}{log}") from exc

    def start(self) -> LocalServer:
        if not (self.datadir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "--encoding=UTF8")
            settings = [
                "listen_addresses = ''",
                f"unix_socket_directories = '{self.socket_dir}'",
                f"shared_buffers = {self.shared_buffers}",
                "max_connections = 60",
                "maintenance_work_mem = 256MB",
                "max_parallel_maintenance_workers = 0",
                "max_parallel_workers_per_gather = 0",
                "dynamic_shared_memory_type = posix",
            ]
            if not self.durable:  # tests and benchmarks: a crash may lose the throwaway data
                settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
            with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write("\n".join(settings) + "\n")
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60",
            "-o", f"-k {self.socket_dir}", "start",
        )  # fmt: skip
        return self

    def url(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgresql://{quote(user)}@/{quote(database)}?host={quote(str(self.socket_dir))}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.socket_dir), "-U", "postgres", "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        return done.stdout

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "-m", "fast", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def env_without_password() -> dict[str, str]:
    """The environment minus PGPASSWORD, for programs that must not inherit it."""
    return {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
