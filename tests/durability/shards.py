"""Sharding on PostgreSQL's own machinery: two shard clusters and a coordinator whose partitioned
table has two postgres_fdw partitions and one local one. Checks vsag_search_shards (exact answers
with index scans off, recall with vsag indexes, settings forwarded, shards queried at once, a shard
that is down is an ERROR, bad input is an ERROR) and plain queries through the parent."""
import os
import subprocess
import time

import psycopg

from cluster import PG_BIN, check
from shardset import ShardSet, clustered, vec_text

DIM, ROWS, NQ, K = 48, 12000, 40, 10
FN = "SELECT (item).id, distance FROM vsag_search_shards(NULL::items, 'v', %s::vector, %s)"


def exact(conn, queries, table="single"):
    conn.execute("SET enable_indexscan = off")
    out = [conn.execute(f"SELECT id, v <=> %s::vector FROM {table} ORDER BY 2 LIMIT {K}", (q,)).fetchall()
           for q in queries]
    conn.execute("RESET enable_indexscan")
    return out


def ids(conn, sql, queries, *args):
    return [[r[0] for r in conn.execute(sql, (q,) + args).fetchall()] for q in queries]


def recall(got, truth):
    return sum(len(set(g) & {t[0] for t in tr}) for g, tr in zip(got, truth)) / (K * len(truth))


def expect_error(conn, sql, args, needle, what):
    try:
        conn.execute(sql, args).fetchall()
    except psycopg.Error as e:
        msg = str(e).splitlines()[0]
        check(needle in msg, f"{what}: ERROR {msg!r}")
        return
    check(False, f"{what}: expected an ERROR containing {needle!r}, got rows")


def shard_setting(conn, part, name):
    return conn.execute(f"SELECT v FROM dblink('vsag_shards {part}', 'SHOW {name}') AS t(v text)").fetchone()[0]


def concurrency(ss, coord_sql, args, label):
    """Lock the table on shard 1, run coord_sql on the coordinator (psql, in the background), and
    see whether shard 2 answers its part while shard 1 is still blocked: True = the shards run at
    the same time. (Not usable for postgres_fdw's async Append: it waits for each DECLARE CURSOR,
    which is what blocks on the lock, before going on; bench/shards.py times it on slow shards.)"""
    s1, s2 = ss.shards
    literal = coord_sql % tuple(f"'{a}'" if isinstance(a, str) else str(a) for a in args)
    started = time.time()
    with s1.connect(autocommit=False) as lock, s1.connect() as w1, s2.connect() as watch:
        lock.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        psql = subprocess.Popen([os.path.join(PG_BIN, "psql"), "-X", "-At", "-h", ss.coord.root, "-p",
                                 str(ss.coord.port), "-U", "postgres", "-c", literal],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        overlapped = False
        deadline = time.time() + 10
        while time.time() < deadline and psql.poll() is None:
            blocked = w1.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query ILIKE '%%items%%'").fetchone()[0]
            answered = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ILIKE '%%items%%' "
                "AND state IN ('idle', 'idle in transaction') AND query_start > to_timestamp(%s)",
                (started,)).fetchone()[0]
            if blocked and answered:
                overlapped = True
                break
            time.sleep(0.05)
        lock.rollback()
        out, err = psql.communicate(timeout=60)
    print(f"     measured: {label}: shard 2 {'answered while shard 1 was blocked' if overlapped else 'waited for shard 1'}")
    rows = [int(line.split("|")[0]) for line in out.split()] if psql.returncode == 0 else None
    return overlapped, rows


def main():
    base = int(os.environ.get("VSAG_SHARDS_PORT", "5480"))
    ss = ShardSet(base).start()
    try:
        run(ss)
    finally:
        if os.environ.get("VSAG_SHARDS_KEEP") != "1":
            ss.stop()


def run(ss):
    data = clustered(ROWS + NQ, DIM, seed=14)
    queries = [vec_text(r) for r in data[ROWS:]]
    ss.create(DIM, opts="m = 32, ef_construction = 128").load(data[:ROWS])
    ss.index()
    with ss.shards[0].connect() as a, ss.shards[1].connect() as b, ss.coord.connect() as c:
        c.prepare_threshold = None  # no server-side prepared plans: they would keep plans across SETs
        n = [a.execute("SELECT count(*) FROM items").fetchone()[0], b.execute("SELECT count(*) FROM items").fetchone()[0],
             c.execute("SELECT count(*) FROM ONLY items_local").fetchone()[0]]
        check(sum(n) == ROWS and min(n) > ROWS // 4, f"rows spread over shard 1, shard 2, local partition: {n}")

        # exact: index scans off everywhere, the sharded answer is the single node's exact top-k
        for s in ss.shards:
            with s.connect() as sc:
                sc.execute("ALTER SYSTEM SET enable_indexscan = off")
                sc.execute("SELECT pg_reload_conf()")
        truth = exact(c, queries)
        c.execute("SET enable_indexscan = off")
        got = [c.execute(FN, (q, K)).fetchall() for q in queries]
        c.execute("RESET enable_indexscan")
        same = sum([r[0] for r in g] == [t[0] for t in tr] and
                   all(abs(x[1] - y[1]) < 1e-6 for x, y in zip(g, tr)) for g, tr in zip(got, truth))
        check(same == NQ, f"index scans off: vsag_search_shards = single node's exact top-{K} for {same}/{NQ} queries")
        for s in ss.shards:
            with s.connect() as sc:
                sc.execute("ALTER SYSTEM RESET enable_indexscan")
                sc.execute("SELECT pg_reload_conf()")

        # approximate: recall through the function and through the parent vs one node's vsag index
        c.execute("SELECT 1 FROM vsag_search_shards(NULL::items, 'v', %s::vector, 1)", (queries[0],))
        part = c.execute("SELECT 'items_s1'::regclass::text").fetchone()[0]
        check(shard_setting(c, part, "enable_indexscan") == "on", "shard connections see index scans on again")
        r_single = recall(ids(c, f"SELECT id FROM single ORDER BY v <=> %s::vector LIMIT {K}", queries), truth)
        r_fn = recall(ids(c, FN, queries, K), truth)
        r_parent = recall(ids(c, f"SELECT id FROM items ORDER BY v <=> %s::vector LIMIT {K}", queries), truth)
        plan = c.execute(f"EXPLAIN SELECT id FROM single ORDER BY v <=> %s::vector LIMIT {K}", (queries[0],)).fetchall()
        check("single_v_idx" in str(plan), "the single node answers through its vsag index")
        # each shard searches a third of the rows for its own top-k, so sharded recall is usually higher
        print(f"     recall@{K}: single node {r_single:.4f}, vsag_search_shards {r_fn:.4f}, parent {r_parent:.4f}")
        check(r_fn >= r_single - 0.01, f"recall through vsag_search_shards {r_fn:.4f} >= single node {r_single:.4f} - 0.01")
        check(r_parent >= r_single - 0.01, f"recall through the parent {r_parent:.4f} >= single node {r_single:.4f} - 0.01")
        # ef_search 200: the function forwards it; the parent query gets it from the servers' options
        c.execute("SET vsag.ef_search = 200")
        for i in (1, 2):
            c.execute(f"ALTER SERVER shard{i} OPTIONS (ADD options '-c vsag.ef_search=200')")
        r_single = recall(ids(c, f"SELECT id FROM single ORDER BY v <=> %s::vector LIMIT {K}", queries), truth)
        r_fn = recall(ids(c, FN, queries, K), truth)
        r_parent = recall(ids(c, f"SELECT id FROM items ORDER BY v <=> %s::vector LIMIT {K}", queries), truth)
        print(f"     recall@{K} at ef_search 200: single node {r_single:.4f}, vsag_search_shards {r_fn:.4f}, "
              f"parent {r_parent:.4f}")
        check(abs(r_fn - r_single) <= 0.01 and abs(r_parent - r_single) <= 0.01,
              "at ef_search 200 both are within 0.01 of the single node")
        c.execute("RESET vsag.ef_search")
        for i in (1, 2):
            c.execute(f"ALTER SERVER shard{i} OPTIONS (DROP options)")

        # the coordinator's vsag.* settings reach the shards; unset ones fall back to the shard's own
        c.execute("SET vsag.ef_search = 77")
        c.execute(FN, (queries[0], K)).fetchall()
        check(shard_setting(c, part, "vsag.ef_search") == "77", "SET vsag.ef_search = 77 is forwarded to the shard")
        c.execute("RESET vsag.ef_search")
        c.execute(FN, (queries[0], K)).fetchall()
        check(shard_setting(c, part, "vsag.ef_search") == "40", "after RESET the shard is back to its own default (40)")

        # what the shards run: their vsag index, ORDER BY + LIMIT k (seen in the shard's pg_stat_activity)
        c.execute(FN, (queries[0], K)).fetchall()
        sent = a.execute("SELECT query FROM pg_stat_activity WHERE query LIKE '%vsag_shards distance%' "
                         "AND pid <> pg_backend_pid()").fetchone()[0]
        topk = sent.split("; ")[-1]
        check(f'ORDER BY "vsag_shards distance" LIMIT {K}' in topk and "OPERATOR(public.<=>)" in topk,
              "each shard receives ORDER BY <=> ... LIMIT k")
        # (on a few thousand small rows the planner may rightly prefer a sort: ask whether the index
        # serves the pushed-down query at all)
        a.execute("SET enable_seqscan = off")
        remote_plan = str(a.execute("EXPLAIN " + topk).fetchall())
        a.execute("RESET enable_seqscan")
        check("Index Scan using items_v_idx" in remote_plan, f"the shard can answer it with its vsag index ({remote_plan[:300]})")

        # EXPLAIN VERBOSE through postgres_fdw: the parent query pushes ORDER BY (not LIMIT, PostgreSQL
        # keeps it above the Merge Append); per-partition subqueries push both and run as async Append
        q = queries[0]
        plan = "\n".join(r[0] for r in c.execute(
            f"EXPLAIN (VERBOSE) SELECT id FROM items ORDER BY v <=> %s::vector LIMIT {K}", (q,)).fetchall())
        remote = [l for l in plan.splitlines() if "Remote SQL" in l]
        check(len(remote) == 2 and all("ORDER BY (v OPERATOR(public.<=>)" in l for l in remote),
              "EXPLAIN VERBOSE of the parent query: ORDER BY <=> pushed to both shards")
        print(f"     measured: parent query pushes LIMIT to the shards: {all('LIMIT' in l for l in remote)}")
        union = " UNION ALL ".join(
            f"(SELECT id, v <=> %(q)s::vector AS d FROM {p} ORDER BY v <=> %(q)s::vector LIMIT {K})"
            for p in ("items_s1", "items_s2", "items_local"))
        # `d + 0`: ordering by the subqueries' own sort key makes a Merge Append, which is not async
        union_sql = f"SELECT id, d FROM ({union}) u ORDER BY d + 0 LIMIT {K}"
        plan = "\n".join(r[0] for r in c.execute("EXPLAIN (VERBOSE) " + union_sql, {"q": q}).fetchall())
        remote = [l for l in plan.splitlines() if "Remote SQL" in l]
        check(len(remote) == 2 and all("ORDER BY (v OPERATOR(public.<=>)" in l and f"LIMIT {K}::bigint" in l
                                       for l in remote),
              "EXPLAIN VERBOSE of per-partition subqueries: ORDER BY <=> and LIMIT pushed to both shards")
        check(plan.count("Async Foreign Scan") == 2, "with async_capable the two foreign scans run as Async Foreign Scan")

    # are the shards queried at the same time? (shard 1 blocked by a lock; does shard 2 answer meanwhile?)
    q = queries[1]
    overlapped, rows = concurrency(ss, FN, (q, K), "vsag_search_shards")
    check(overlapped, "vsag_search_shards sends to shard 2 while shard 1 is still working")
    with ss.coord.connect() as c:
        unblocked = ids(c, FN, [q], K)[0]
    check(rows == unblocked, "and returns the same answer once shard 1 is unblocked")
    concurrency(ss, f"SELECT id FROM items ORDER BY v <=> %s::vector LIMIT {K}", (q,), "plain query through the parent")

    with ss.coord.connect() as c:
        # bad input
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::single, 'v', %s::vector, 10)", (q,),
                     "is not a partitioned table", "a plain table")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::int, 'v', %s::vector, 10)", (q,),
                     "must be a row of a partitioned table", "not a row type")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'v', %s::vector, 0)", (q,),
                     "k must be at least 1", "k = 0")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'v', %s::vector, 10, '<+>')", (q,),
                     "unknown operator", "operator <+>")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'note', %s::vector, 10)", (q,),
                     "has no vector column", "a text column")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'v', %s::vector, 10, '<->')", (q,),
                     "has no vsag index on column v for operator <->", "an operator no index serves")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'v', '[1,2,3]'::vector, 10)", (),
                     "the query has 3 dimensions, items.v has 48", "a query of the wrong dimension")
        c.execute("DROP INDEX items_local_v_idx")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'v', %s::vector, 10)", (q,),
                     "partition items_local has no vsag index", "a local partition without its index")
        c.execute(f"CREATE INDEX items_local_v_idx ON items_local USING vsag (v vector_cosine_ops) WITH ({ss.opts})")
        with ss.shards[1].connect() as b:
            b.execute("DROP INDEX items_v_idx")
        expect_error(c, "SELECT * FROM vsag_search_shards(NULL::items, 'v', %s::vector, 10)", (q,),
                     "partition items_s2 (server shard2) has no vsag index", "a shard without its index")
        with ss.shards[1].connect() as b:
            b.execute(f"CREATE INDEX items_v_idx ON items USING vsag (v vector_cosine_ops) WITH ({ss.opts})")
        before = [r[0] for r in c.execute(FN, (q, K)).fetchall()]
        check(len(before) == K, "after the errors the next call answers again")

        # a shard that is down: an ERROR naming it, never a partial answer
        ss.shards[1].stop()
        expect_error(c, FN, (q, K), "partition items_s2 (server shard2) failed", "shard 2 stopped")
        try:
            c.execute(f"SELECT id FROM items ORDER BY v <=> %s::vector LIMIT {K}", (q,)).fetchall()
            check(False, "plain query through the parent with shard 2 stopped: expected an ERROR")
        except psycopg.Error as e:
            check(True, f"plain query through the parent with shard 2 stopped: ERROR {str(e).splitlines()[0]!r}")
        with ss.coord.connect() as fresh:
            expect_error(fresh, FN, (q, K), "partition items_s2 (server shard2) failed: could not establish connection",
                         "shard 2 stopped, new session")
        ss.shards[1].start()
        got = [r[0] for r in c.execute(FN, (q, K)).fetchall()]
        check(got == before, "shard 2 restarted: the next call reconnects and gives the same answer")
        ss.shards[0].stop("immediate")
        ss.shards[0].start()
        got = [r[0] for r in c.execute(FN, (q, K)).fetchall()]
        check(got == before, "shard 1 restarted under this session's open connection: the call reconnects, same answer")


if __name__ == "__main__":
    main()
