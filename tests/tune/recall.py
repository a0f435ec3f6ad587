"""Issue 13's "Done when" on generated data: after `SELECT * FROM vsag_tune('docs_ann', 0.95)`
plain queries at default settings reach recall@10 >= 0.95 on held-out queries (vectors that
are not rows of the table, never seen by vsag_tune), at >= 0.85x the QPS (pgbench -M prepared
-c 2 -j 2, interleaved rounds of the same run) of the cheapest hand-set vsag.ef_search that
reaches 0.95 on them. The comparison itself is bench/vsagbench/tunecheck.py, which also
produces the benchmark's numbers on minilm-100k (bench/tune)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "durability"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

from cluster import PG_BIN, Cluster, check  # noqa: E402
from vsagbench import data, tunecheck  # noqa: E402

N, DIM, NQ = 20_000, 64, 300
EFS = [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 128, 160, 200, 256, 320, 400]


def main():
    ds = data.synthetic(N, DIM, nqueries=NQ, clusters=50, seed=13, metric="l2")
    c = Cluster("/tmp/vsag-tune-test", int(os.environ.get("VSAG_TUNE_TEST_PORT", "5496"))).init(
        settings={"shared_buffers": "256MB", "jit": "off", "fsync": "off"}).start()
    try:
        c.connect().execute("CREATE DATABASE tune")
        with c.connect("tune") as conn:
            conn.execute("CREATE EXTENSION vsag")
            with conn.cursor() as cur:
                for table, vecs in (("docs", ds.base), ("queries", ds.queries)):
                    cur.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, embedding vector({DIM}))")
                    with cur.copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT binary)") as cp:
                        cp.write(data.copy_binary(list_ids(len(vecs)), vecs))
            conn.execute("VACUUM ANALYZE docs")
            conn.execute("VACUUM ANALYZE queries")
            conn.execute("CREATE INDEX docs_ann ON docs USING vsag (embedding vector_l2_ops)")
            env = dict(os.environ, PGHOST=c.root, PGPORT=str(c.port), PGUSER="postgres")
            res = tunecheck.compare(conn, os.path.join(PG_BIN, "pgbench"), env, "tune", "l2", ds.gt, EFS,
                                    target=0.95, sample=200, seconds=3, rounds=3)
            t = res["tuned"]
            check(t["chosen"] is not None and t["chosen"]["recall_low"] >= 0.95,
                  f"vsag_tune chose {t['chosen']} (lower confidence bound of its sample recall >= 0.95)")
            check(t["recall@10"] >= 0.95,
                  f"held-out recall@10 at default settings after vsag_tune: {t['recall@10']:.4f} >= 0.95")
            check(res["qps_ratio"] >= 0.85,
                  f"QPS at default settings {t['qps']:.0f} vs the cheapest hand-set ef_search "
                  f"({res['best_hand_set']['ef']}) {res['best_hand_set']['qps']:.0f}: ratio {res['qps_ratio']:.2f} >= 0.85")
    finally:
        c.stop()


def list_ids(n):
    import numpy as np
    return np.arange(n, dtype=np.int32)


if __name__ == "__main__":
    main()
