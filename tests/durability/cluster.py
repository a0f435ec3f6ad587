"""Private PostgreSQL clusters for the durability tests (Debian's PostgreSQL by default),
run as the `postgres` OS user when we are root because initdb refuses root."""
import os
import pwd
import shutil
import subprocess
import time

import psycopg

PG_BIN = os.environ.get("VSAG_PG_BIN", "/usr/lib/postgresql/15/bin")


def _as_pg(cmd, check=True, **kw):
    if os.geteuid() == 0:
        cmd = ["sudo", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=check, **kw)


def _own(path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class Cluster:
    def __init__(self, root, port):
        self.root, self.port = root, port
        self.data = os.path.join(root, "data")
        self.log = os.path.join(root, "server.log")

    def init(self, fresh=True, settings=None):
        if fresh and os.path.exists(self.root):
            self.stop()
            shutil.rmtree(self.root)
        os.makedirs(self.root, exist_ok=True)
        _own(self.root)
        _as_pg([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync"],
               stdout=subprocess.DEVNULL)
        with open(os.path.join(self.root, "extra.conf"), "w") as f:
            for k, v in (settings or {}).items():
                f.write(f"{k} = {v}\n")
        _own(os.path.join(self.root, "extra.conf"))
        _as_pg(["sh", "-c", f"echo \"include '{self.root}/extra.conf'\" >> {self.data}/postgresql.conf"])
        return self

    def start(self):
        _as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "120",
                "-o", f"-p {self.port} -k {self.root} -c listen_addresses=''", "start"], stdout=subprocess.DEVNULL)
        return self

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            _as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill9(self):
        """SIGKILL the postmaster and all its children at once: a crash, as after power loss."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            pid = int(f.readline())
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for p in [pid] + [int(k) for k in kids]:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        for _ in range(100):
            alive = [p for p in [pid] + [int(k) for k in kids] if os.path.exists(f"/proc/{p}")]
            if not alive:
                break
            time.sleep(0.05)

    def dsn(self, db="postgres"):
        return f"host={self.root} port={self.port} user=postgres dbname={db}"

    def connect(self, db="postgres", autocommit=True):
        return psycopg.connect(self.dsn(db), autocommit=autocommit)

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""


def check(cond, what):
    """Print a check line; raise on failure so the runner counts it."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        raise AssertionError(what)
