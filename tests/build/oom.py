"""A build whose vectors do not fit the memory the server may allocate fails with an ERROR
(not a crash): the cluster runs under `ulimit -v`, maintenance_work_mem is far above it,
the rows' buffer cannot grow, CREATE INDEX reports what did not fit and the setting, and
the session and server keep working (no backend terminated by a signal)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "durability"))
import cluster  # noqa: E402
from cluster import Cluster  # noqa: E402

import psycopg  # noqa: E402

PORT = int(os.environ.get("VSAG_BUILD_TEST_PORT", "5532"))
ROOT = os.environ.get("VSAG_BUILD_TEST_ROOT", "/tmp/vsag-build-oom")
LIMIT_KB = 1_200_000  # address space per server process
ROWS, DIM = 250_000, 1024  # 1 GB of floats; the table is small (constant rows compress)


class LimitedCluster(Cluster):
    def start(self):
        pg_ctl = os.path.join(cluster.PG_BIN, "pg_ctl")
        cluster._as_pg(["sh", "-c", f"ulimit -v {LIMIT_KB} && exec {pg_ctl} -D {self.data} -l {self.log} -w -t 120 "
                        f"-o \"-p {self.port} -k {self.root} -c listen_addresses=''\" start"], stdout=subprocess.DEVNULL)
        return self



def main():
    cl = LimitedCluster(ROOT, PORT).init(settings={"shared_buffers": "32MB", "max_parallel_maintenance_workers": 1})
    cl.start()
    failures = []
    try:
        with cl.connect() as c:
            c.execute("CREATE EXTENSION vsag")
            c.execute(f"CREATE TABLE t AS SELECT i AS id, array_fill(i::real, ARRAY[{DIM}])::vector({DIM}) AS v "
                      f"FROM generate_series(1, {ROWS}) i")
            c.execute("SET maintenance_work_mem = '8GB'")
            try:
                c.execute("CREATE INDEX t_idx ON t USING vsag (v vector_l2_ops)")
                failures.append("the build succeeded under the limit")
                print("FAIL: CREATE INDEX succeeded although 1 GB of vectors cannot fit")
            except psycopg.errors.OutOfMemory as e:
                msg = str(e)
                good = "maintenance_work_mem" in msg and "vectors" in msg
                print(f"{'ok' if good else 'FAIL'}: CREATE INDEX failed with: {msg}")
                if not good:
                    failures.append("message")
            n = c.execute("SELECT count(*) FROM t").fetchone()[0]
            print(f"{'ok' if n == ROWS else 'FAIL'}: the session still works ({n} rows)")
            if n != ROWS:
                failures.append("session")
        with cl.connect() as c:
            c.execute("CREATE TABLE s AS SELECT * FROM t WHERE id % 50 = 0")
            c.execute("SET maintenance_work_mem = '64MB'")
            c.execute("CREATE INDEX s_idx ON s USING vsag (v vector_l2_ops)")
            got = c.execute(f"SELECT id FROM s ORDER BY v <-> array_fill(100::real, ARRAY[{DIM}])::vector({DIM}) "
                            "LIMIT 1").fetchone()[0]
            print(f"{'ok' if got == 100 else 'FAIL'}: then a build at 64MB of 5,000 rows works (nearest id {got})")
            if got != 100:
                failures.append("later build")
        if "terminated by signal" in cl.log_text():
            failures.append("a backend crashed")
            print("FAIL: server log shows a crashed backend")
    except Exception as e:  # noqa: BLE001
        failures.append(repr(e))
        print("FAIL:", e)
    finally:
        cl.stop()
    print("build oom:", "ok" if not failures else f"FAILED {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
