"""VACUUM under churn on real data (minilm-100k, cosine): delete 50% of the rows at random,
VACUUM, and recall@10 of the remaining rows must stay >= 0.95 of what a fresh build on the
same rows gives; then 5 rounds of churn (delete 10% + insert as many), VACUUM after each,
and recall must hold, the index must not grow by more than 20%, and no live node may be
unreachable. Needs ../shared/data/minilm-100k.*; set VSAG_CHURN_N for a subset."""
import os
import sys
import time

import numpy as np

from cluster import Cluster, check
from common import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))
from vsagbench import data  # noqa: E402

PREFIX = os.path.join(REPO, "..", "shared", "data", "minilm-100k")
N = int(os.environ.get("VSAG_CHURN_N", "100000"))
NQ = 200
EF = 40


def recall(conn, table, queries, gt):
    conn.execute("SET enable_seqscan = off")
    conn.execute(f"SET vsag.ef_search = {EF}")
    hits = 0
    with conn.cursor() as cur:
        for qi, q in enumerate(queries):
            cur.execute(f"SELECT id FROM {table} ORDER BY embedding <=> %s::vector LIMIT 10",
                        ("[" + ",".join(map(str, q.tolist())) + "]",), prepare=True)
            hits += len({r[0] for r in cur.fetchall()} & set(gt[qi].tolist()))
    return hits / (10 * len(queries))


def truth(base, alive, queries):
    ids = np.flatnonzero(alive)
    return ids[data.exact_knn(base[ids], queries, "cosine", 10)]


def copy_rows(conn, table, ids, vecs):
    with conn.cursor() as cur, cur.copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT binary)") as cp:
        cp.write(data.copy_binary(ids.astype(np.int32), vecs))


def main():
    if not os.path.exists(PREFIX + ".base.fvecs"):
        print(f"churn: skipped, {PREFIX}.base.fvecs not found")
        return
    base = data.read_fvecs(PREFIX + ".base.fvecs")[:N]
    queries = data.read_fvecs(PREFIX + ".query.fvecs")[:NQ]
    rng = np.random.default_rng(11)
    c = Cluster("/tmp/vsag-churn", 5496).init(settings={"shared_buffers": "1GB", "maintenance_work_mem": "2GB",
                                                       "max_wal_size": "4GB", "synchronous_commit": "off"}).start()
    with c.connect() as conn:
        conn.execute("CREATE EXTENSION vsag")
        conn.execute(f"CREATE TABLE docs (id integer PRIMARY KEY, embedding vector({base.shape[1]}))")
        copy_rows(conn, "docs", np.arange(len(base)), base)
        t0 = time.time()
        conn.execute("CREATE INDEX docs_idx ON docs USING vsag (embedding vector_cosine_ops)")
        print(f"built on {len(base)} rows in {time.time() - t0:.1f}s", flush=True)
        alive = np.ones(len(base), bool)
        r_full = recall(conn, "docs", queries, truth(base, alive, queries))
        print(f"recall@10 (ef_search={EF}) on all rows: {r_full:.4f}", flush=True)

        dead = rng.choice(len(base), len(base) // 2, replace=False)
        alive[dead] = False
        conn.execute("DELETE FROM docs WHERE id = ANY(%s)", (dead.tolist(),))
        t0 = time.time()
        conn.execute("VACUUM docs")
        print(f"deleted {len(dead)} rows, VACUUM in {time.time() - t0:.1f}s", flush=True)
        gt = truth(base, alive, queries)
        r_after = recall(conn, "docs", queries, gt)
        conn.execute(f"CREATE TABLE fresh (id integer PRIMARY KEY, embedding vector({base.shape[1]}))")
        conn.execute("INSERT INTO fresh SELECT * FROM docs")
        conn.execute("CREATE INDEX fresh_idx ON fresh USING vsag (embedding vector_cosine_ops)")
        r_fresh = recall(conn, "fresh", queries, gt)
        check(r_after >= 0.95 * r_fresh,
              f"after deleting 50% + VACUUM recall@10 {r_after:.4f} >= 0.95 x fresh build {r_fresh:.4f}")
        check(warnings(conn, "docs_idx") == 0, "no unreachable live node after VACUUM")
        size0 = conn.execute("SELECT pg_relation_size('docs_idx')").fetchone()[0]

        next_id = len(base)
        for rnd in range(1, 6):
            live_ids = np.flatnonzero(alive)
            gone = rng.choice(live_ids, len(base) // 10, replace=False)
            back = rng.choice(np.flatnonzero(~alive), len(base) // 10, replace=False)
            conn.execute("DELETE FROM docs WHERE id = ANY(%s)", (gone.tolist(),))
            alive[gone] = False
            # re-insert vectors of dead rows under their own ids (new heap tuples, index inserts)
            t0 = time.time()
            copy_rows(conn, "docs", back, base[back])
            alive[back] = True
            ins_s = time.time() - t0
            conn.execute("VACUUM docs")
            r = recall(conn, "docs", queries, truth(base, alive, queries))
            size = conn.execute("SELECT pg_relation_size('docs_idx')").fetchone()[0]
            check(r >= 0.95 * r_fresh, f"churn round {rnd}: -{len(gone)} +{len(back)} rows ({ins_s:.1f}s), "
                                       f"recall@10 {r:.4f} >= 0.95 x {r_fresh:.4f}; index {size / 2**20:.0f} MB")
        check(warnings(conn, "docs_idx") == 0, "no unreachable live node after churn")
        # VACUUM frees the slots of nodes that lost their rows and inserts reuse them.
        check(size <= 1.2 * size0, f"index after churn {size / 2**20:.0f} MB <= 1.2 x {size0 / 2**20:.0f} MB before it")
        errs = conn.execute("SELECT count(*) FROM vsag_verify('docs_idx') WHERE severity = 'error'").fetchone()[0]
        check(errs == 0, "vsag_verify reports no corruption after churn")
    print(f"churn: {N} rows, 50% deleted, 5 churn rounds of {N // 10} rows")
    c.stop()


if __name__ == "__main__":
    main()
