"""Shared helpers for the durability tests: random vectors, reachability checks."""
import random

DIM = 32


def rand_vec(rng):
    return "[" + ",".join(f"{rng.uniform(-1, 1):.6f}" for _ in range(DIM)) + "]"


def setup_table(conn, rows, seed=1, opts="m = 16, ef_construction = 64"):
    rng = random.Random(seed)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vsag")
    conn.execute(f"CREATE TABLE t (id bigint PRIMARY KEY, v vector({DIM}))")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, rand_vec(rng)) for i in range(rows)])
    conn.execute(f"CREATE INDEX t_v_idx ON t USING vsag (v vector_l2_ops) WITH ({opts})")


def unreachable_rows(conn, limit=None):
    """Rows whose own vector does not find them first through the index (approximate search:
    a few misses on hard data are recall, not loss; reachability is checked exhaustively)."""
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET vsag.ef_search = 200")
    rows = conn.execute("SELECT id, v::text FROM t ORDER BY id" + (f" LIMIT {limit}" if limit else "")).fetchall()
    bad = []
    with conn.cursor() as cur:
        for rid, v in rows:
            got = cur.execute("SELECT id FROM t ORDER BY v <-> %s::vector LIMIT 1", (v,), prepare=True).fetchone()
            if got is None or got[0] != rid:
                # an identical vector elsewhere is fine; anything else is a miss
                d = cur.execute("SELECT v <-> %s::vector FROM t WHERE id = %s", (v, got[0])).fetchone() if got else None
                if d is None or d[0] != 0:
                    bad.append(rid)
    conn.execute("RESET enable_seqscan")
    conn.execute("RESET vsag.ef_search")
    return bad, len(rows)


def index_walk_count(conn):
    """Rows an exhaustive index scan returns, and how many distinct. A continuation stops at
    vsag.scan_mem_multiplier x work_mem (at 4 MB a 40k-row index's walk ended at 12,800
    rows), so raise it."""
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET vsag.max_scan_tuples = 100000000")
    conn.execute("SET work_mem = '1GB'")
    r = conn.execute("SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM t "
                     "ORDER BY v <-> (SELECT v FROM t ORDER BY id LIMIT 1) LIMIT 100000000) s").fetchone()
    conn.execute("RESET enable_seqscan")
    conn.execute("RESET vsag.max_scan_tuples")
    conn.execute("RESET work_mem")
    return r


def verify(conn, index="t_v_idx"):
    """Problems reported by vsag_verify (empty list when the index is consistent)."""
    return conn.execute(f"SELECT block, item, message FROM vsag_verify('{index}') WHERE severity = 'error'").fetchall()


def indexed_ids(conn):
    """Every heap row id the index holds, via an index scan with a NULL query (index order)."""
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET vsag.max_scan_tuples = 100000000")
    ids = [r[0] for r in conn.execute("SELECT id FROM t ORDER BY v <-> (SELECT NULL::vector) LIMIT 100000000").fetchall()]
    conn.execute("RESET enable_seqscan")
    conn.execute("RESET vsag.max_scan_tuples")
    return ids


def warnings(conn, index="t_v_idx"):
    return conn.execute(f"SELECT count(*) FROM vsag_verify('{index}') WHERE severity = 'warning'").fetchone()[0]


def check_index(conn, label, check):
    """The full battery: index entries = table rows, no corruption, and after VACUUM (which
    relinks nodes whose in-edges were pruned away) every row reachable and found."""
    table = {r[0] for r in conn.execute("SELECT id FROM t").fetchall()}
    ids = indexed_ids(conn)
    check(len(ids) == len(set(ids)) and set(ids) == table,
          f"{label}: index scan returns exactly the {len(table)} table rows ({len(ids)} returned)")
    problems = verify(conn)
    check(not problems, f"{label}: vsag_verify reports no corruption {problems[:3]}")
    before = warnings(conn)
    conn.execute("VACUUM t")
    after = warnings(conn)
    check(after == 0, f"{label}: after VACUUM no unreachable node (before: {before})")
    bad, n = unreachable_rows(conn)
    check(len(bad) <= n // 100, f"{label}: {n - len(bad)} of {n} rows found first by an ef_search=200 search "
                                f"for their own vector (>= 99%; misses {bad[:5]})")
    cnt, distinct = index_walk_count(conn)
    check(cnt == distinct == len(table), f"{label}: an exhaustive search returns all {len(table)} rows once "
                                        f"({cnt} returned, {distinct} distinct)")
