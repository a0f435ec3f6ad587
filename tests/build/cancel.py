"""CREATE INDEX ... USING vsag stops promptly when cancelled in each build phase: a second
session watches pg_stat_progress_create_index and calls pg_cancel_backend as soon as the
phase it targets shows up (and statement_timeout stops the graph phase); the error must
arrive within 1.5 s, the session and server stay usable and no index is left behind."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "durability"))
from cluster import Cluster  # noqa: E402

import psycopg  # noqa: E402

PORT = int(os.environ.get("VSAG_BUILD_TEST_PORT", "5531"))
ROOT = os.environ.get("VSAG_BUILD_TEST_ROOT", "/tmp/vsag-build-cancel")
LIMIT_S = 1.5
ROWS, DIM = 60000, 64


def fill(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS vsag")
    conn.execute("DROP TABLE IF EXISTS t")
    conn.execute("SELECT setseed(0.5)")
    # 64 clusters: each row is its cluster's centre plus noise.
    conn.execute(f"""CREATE TABLE t AS
        SELECT i AS id, (SELECT array_agg(((i % 64) * 0.37 + j * 0.11)::int % 7 + random() * 0.3)
                         FROM generate_series(1, {DIM}) j)::vector({DIM}) AS v
        FROM generate_series(1, {ROWS}) i""")


def build_and_cancel(cl, phase, mwm, timeout_ms=None):
    """Returns (phase seen, seconds from the cancel to the error)."""
    conn = cl.connect()
    conn.execute("DROP INDEX IF EXISTS t_idx")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.execute(f"SET maintenance_work_mem = '{mwm}'")
    if timeout_ms:
        conn.execute(f"SET statement_timeout = {timeout_ms}")
    out = {}

    def run():
        out["start"] = time.monotonic()
        try:
            conn.execute("CREATE INDEX t_idx ON t USING vsag (v vector_l2_ops)")
            out["error"] = None
        except psycopg.Error as e:
            out["error"] = str(e)
        out["end"] = time.monotonic()

    th = threading.Thread(target=run)
    watch = cl.connect()
    th.start()
    seen, cancel_at = None, None
    while th.is_alive():
        r = watch.execute("SELECT phase FROM pg_stat_progress_create_index WHERE pid = %s", (pid,)).fetchone()
        # PostgreSQL shows the AM's phases as "building index: <name>".
        if r and r[0].endswith(phase) and seen is None:
            seen = phase
            cancel_at = time.monotonic()
            if not timeout_ms:
                watch.execute("SELECT pg_cancel_backend(%s)", (pid,))
        time.sleep(0.002)
    th.join()
    ok_after = conn.execute("SELECT count(*) FROM t").fetchone()[0] == ROWS
    left = conn.execute("SELECT count(*) FROM pg_class WHERE relname = 't_idx'").fetchone()[0]
    conn.close()
    watch.close()
    return seen, cancel_at, out, ok_after, left


def main():
    cl = Cluster(ROOT, PORT).init(settings={"max_parallel_maintenance_workers": 1})
    cl.start()
    failures = []
    try:
        with cl.connect() as c:
            fill(c)
        # Each phase of a float build (1 GB), the graph phase over SQ8 codes (26 MB: the
        # 15 MB of floats plus a graph of up to m = 40 do not fit, the codes and the graph
        # of the quantizer `auto` settles on do), and a build in partitions (4 MB: not even
        # the codes and graph fit).
        cases = [("loading tuples", "1GB"), ("grouping duplicates", "1GB"), ("building graph", "1GB"),
                 ("encoding codes", "1GB"), ("writing pages", "1GB"), ("building graph", "26MB"),
                 ("building partitions", "4MB")]
        for phase, mwm in cases:
            seen, at, out, ok_after, left = build_and_cancel(cl, phase, mwm)
            if seen is None:
                # The short phases can pass between two polls; the long ones must be caught.
                msg = f"phase {phase!r} ({mwm}) not observed (finished: {out.get('error') is None})"
                if phase in ("grouping duplicates", "encoding codes"):
                    print("note:", msg)
                else:
                    failures.append(msg)
                continue
            took = out["end"] - at
            good = out.get("error") is not None and "cancel" in out["error"] and took < LIMIT_S and ok_after and left == 0
            print(f"{'ok' if good else 'FAIL'}: cancel in {phase!r} at maintenance_work_mem {mwm}: "
                  f"error after {took:.2f} s ({out.get('error')!r}), session usable {ok_after}, index left {left}")
            if not good:
                failures.append(f"cancel in {phase}")
        # statement_timeout during the graph phase.
        seen, at, out, ok_after, left = build_and_cancel(cl, "building graph", "1GB", timeout_ms=3000)
        err = out.get("error") or ""
        took = out["end"] - out["start"]
        good = seen is not None and "statement timeout" in err and took < 3 + LIMIT_S and ok_after and left == 0
        print(f"{'ok' if good else 'FAIL'}: statement_timeout 3 s during the build: {err!r} after {took:.2f} s")
        if not good:
            failures.append("statement_timeout")
        with cl.connect() as c:
            c.execute("DROP INDEX IF EXISTS t_idx")
            c.execute("CREATE INDEX t_idx ON t USING vsag (v vector_l2_ops)")
            summary = c.execute("SELECT message FROM vsag_verify('t_idx') WHERE severity = 'info' AND message LIKE '% pages, %'").fetchone()[0]
            print("after the cancels a full build works:", summary)
            if "0 unreachable, 0 problems" not in summary:
                failures.append("final build")
        if "terminated by signal" in cl.log_text():
            failures.append("a backend crashed")
    finally:
        cl.stop()
    print("build cancel:", "ok" if not failures else f"FAILED {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
