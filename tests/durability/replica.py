"""Streaming replication: a physical standby (pg_basebackup) replays the index built and
changed on the primary; the same queries give identical answers on both."""
import os
import random
import subprocess
import time

from cluster import PG_BIN, Cluster, _as_pg, _own, check
from common import rand_vec, setup_table, verify


def wait_replay(primary, standby, timeout=60):
    with primary.connect() as p:
        lsn = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.time() + timeout
    with standby.connect() as s:
        while time.time() < deadline:
            if s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                return True
            time.sleep(0.2)
    return False


def answers(conn, queries):
    conn.execute("SET enable_seqscan = off")
    out = []
    for q in queries:
        out.append([r[0] for r in conn.execute("SELECT id FROM t ORDER BY v <-> %s::vector LIMIT 10", (q,)).fetchall()])
    return out


def main():
    primary = Cluster("/tmp/vsag-primary", 5492).init(settings={"wal_level": "replica", "max_wal_senders": 4}).start()
    standby = Cluster("/tmp/vsag-standby", 5493)
    if os.path.exists(standby.root):
        standby.stop()
        subprocess.run(["rm", "-rf", standby.root])
    os.makedirs(standby.root)
    _own(standby.root)
    _as_pg([os.path.join(PG_BIN, "pg_basebackup"), "-D", standby.data, "-R", "-h", primary.root,
            "-p", str(primary.port), "-U", "postgres", "-X", "stream"])
    standby.start()
    rng = random.Random(5)
    with primary.connect() as p:
        setup_table(p, 3000)                      # CREATE INDEX: full-page images
        with p.cursor() as cur:                   # aminsert: generic WAL records
            cur.executemany("INSERT INTO t VALUES (%s, %s)", [(10_000 + i, rand_vec(rng)) for i in range(1000)])
        p.execute("DELETE FROM t WHERE id % 7 = 0")
        p.execute("VACUUM t")                     # ambulkdelete: generic WAL records
        with p.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s)", [(20_000 + i, rand_vec(rng)) for i in range(500)])
    check(wait_replay(primary, standby), "standby replayed the primary's WAL")
    queries = [rand_vec(rng) for _ in range(100)]
    with primary.connect() as p, standby.connect() as s:
        a, b = answers(p, queries), answers(s, queries)
        same = sum(x == y for x, y in zip(a, b))
        check(same == len(queries), f"standby returns identical top-10 for {same}/{len(queries)} queries")
        n_p = p.execute("SELECT count(*) FROM t").fetchone()[0]
        n_s = s.execute("SELECT count(*) FROM t").fetchone()[0]
        check(n_p == n_s, f"row counts agree ({n_p} rows)")
        check(not verify(s), "vsag_verify clean on the standby")
        check(not verify(p), "vsag_verify clean on the primary")
    print(f"replica: {len(queries)} queries compared on primary and standby")
    standby.stop()
    primary.stop()


if __name__ == "__main__":
    main()
