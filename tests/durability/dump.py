"""pg_dump / pg_restore of a table with vsag indexes: the restored database rebuilds the
indexes and answers the same queries the same way."""
import os
import random
import subprocess

from cluster import PG_BIN, Cluster, check
from common import rand_vec, setup_table, verify


def answers(conn, queries):
    conn.execute("SET enable_seqscan = off")
    return [[r[0] for r in conn.execute("SELECT id FROM t ORDER BY v <-> %s::vector LIMIT 10", (q,)).fetchall()]
            for q in queries]


def main():
    c = Cluster("/tmp/vsag-dump", 5490).init().start()
    with c.connect() as conn:
        conn.execute("CREATE DATABASE src")
        conn.execute("CREATE DATABASE dst")
    with c.connect("src") as conn:
        setup_table(conn, 3000, opts="m = 16, ef_construction = 64, quantizer = sq4, storage = codes")
    dump = os.path.join(c.root, "src.dump")
    env = dict(os.environ, PGHOST=c.root, PGPORT=str(c.port), PGUSER="postgres")
    r = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", dump, "src"], env=env, capture_output=True, text=True)
    check(r.returncode == 0, f"pg_dump -Fc succeeded {r.stderr[:200]}")
    r = subprocess.run([os.path.join(PG_BIN, "pg_restore"), "-d", "dst", dump], env=env, capture_output=True, text=True)
    check(r.returncode == 0, f"pg_restore succeeded {r.stderr[:200]}")
    rng = random.Random(3)
    queries = [rand_vec(rng) for _ in range(50)]
    with c.connect("src") as a, c.connect("dst") as b:
        opts = b.execute("SELECT reloptions FROM pg_class WHERE relname = 't_v_idx'").fetchone()[0]
        check(opts and "storage=codes" in opts and "quantizer=sq4" in opts, f"restored index keeps its options {opts}")
        same = sum(x == y for x, y in zip(answers(a, queries), answers(b, queries)))
        check(same == len(queries), f"restored database gives identical top-10 for {same}/{len(queries)} queries")
        check(not verify(b), "vsag_verify clean on the restored index")
    print(f"dump: 3000 rows dumped and restored, {len(queries)} queries compared")
    c.stop()


if __name__ == "__main__":
    main()
