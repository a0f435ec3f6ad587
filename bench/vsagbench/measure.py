"""Build an index, then sweep ef_search measuring recall (any client) and throughput /
latency (pgbench -M prepared, the client that does not hide index speed)."""
import os
import re
import subprocess
import tempfile
import time

import numpy as np
import psycopg

from . import server as srv

OPS = {"cosine": ("<=>", "vector_cosine_ops"), "l2": ("<->", "vector_l2_ops"), "ip": ("<#>", "vector_ip_ops")}


class System:
    """How one index kind is created and tuned: vsag or pgvector's hnsw."""

    def __init__(self, name, db, am, ef_guc, options, extra_gucs=None):
        self.name, self.db, self.am, self.ef_guc, self.options = name, db, am, ef_guc, options
        self.extra_gucs = extra_gucs or {}

    @property
    def label(self):
        opts = ", ".join(f"{k}={v}" for k, v in {**self.options, **self.extra_gucs}.items())
        return f"{self.name} ({opts})" if opts else self.name


def load(conn, ds, data_mod):
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS docs, queries")
        cur.execute(f"CREATE TABLE docs (id integer PRIMARY KEY, embedding vector({ds.dim}))")
        cur.execute(f"CREATE TABLE queries (id integer PRIMARY KEY, embedding vector({ds.dim}))")
        for table, vecs in (("docs", ds.base), ("queries", ds.queries)):
            copy_rows(cur, table, np.arange(len(vecs), dtype=np.int32), vecs, data_mod)
        cur.execute("VACUUM (ANALYZE) docs")
        cur.execute("VACUUM (ANALYZE) queries")


def copy_rows(cur, table, ids, vecs, data_mod):
    """Binary COPY of (id, embedding) rows into `table`, in 4 MB pieces."""
    payload = data_mod.copy_binary(ids, vecs)
    with cur.copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT binary)") as cp:
        for s in range(0, len(payload), 1 << 22):
            cp.write(payload[s:s + (1 << 22)])


def build(conn, system, metric, maintenance_work_mem):
    op, opclass = OPS[metric]
    with conn.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS docs_ann")
        cur.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
        # quote words: `bit` alone would parse as a type name
        with_ = ", ".join(f"{k} = {v}" if str(v).replace(".", "").isdigit() else f"{k} = '{v}'"
                          for k, v in system.options.items())
        sql = f"CREATE INDEX docs_ann ON docs USING {system.am} (embedding {opclass})"
        if with_:
            sql += f" WITH ({with_})"
        t0 = time.perf_counter()
        cur.execute(sql)
        build_s = time.perf_counter() - t0
        cur.execute("SELECT pg_relation_size('docs_ann'), pg_relation_size('docs') + "
                    "coalesce(pg_relation_size(reltoastrelid), 0) FROM pg_class WHERE relname = 'docs'")
        size, table_size = cur.fetchone()
    return build_s, size, table_size


def query_sql(metric, limit):
    op = OPS[metric][0]
    return (f"SELECT id FROM docs ORDER BY embedding {op} "
            f"(SELECT embedding FROM queries WHERE id = %s) LIMIT {limit}")


def uses_index(conn, metric):
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + query_sql(metric, 10).replace("%s", "0"))
        plan = "\n".join(r[0] for r in cur.fetchall())
    return "docs_ann" in plan


def recall(conn, system, ds, ef, nq):
    """Recall@1/@10/@100 from one LIMIT 100 query per test query."""
    hits = {1: 0, 10: 0, 100: 0}
    with conn.cursor() as cur:
        cur.execute(f"SET {system.ef_guc} = {ef}")
        for g, v in system.extra_gucs.items():
            cur.execute(f"SET {g} = {v}")
        sql = query_sql(ds.metric, 100)
        for qi in range(nq):
            cur.execute(sql, (qi,), prepare=True)
            got = [r[0] for r in cur.fetchall()]
            for k in hits:
                hits[k] += len(set(got[:k]) & set(ds.gt[qi, :k].tolist()))
    return {f"recall@{k}": hits[k] / (nq * min(k, ds.gt.shape[1])) for k in hits}


def rerank_effect(conn, ds, ef, nq):
    """vsag only: recall@10 and exact distances per query (LIMIT 10) with the selective
    re-rank filter on and off, from vsag_last_scan_stats() after each query."""
    out = {}
    with conn.cursor() as cur:
        cur.execute(f"SET vsag.ef_search = {ef}")
        sql = query_sql(ds.metric, 10)
        for mode in ("on", "off"):
            cur.execute(f"SET vsag.rerank = {mode}")
            hits = exact = fetched = pages = 0
            for qi in range(nq):
                cur.execute(sql, (qi,), prepare=True)
                got = [r[0] for r in cur.fetchall()]
                hits += len(set(got) & set(ds.gt[qi, :10].tolist()))
                e, h, pr = cur.execute(
                    "SELECT exact_distances, heap_fetches, page_reads FROM vsag_last_scan_stats()").fetchone()
                exact += e
                fetched += h
                pages += pr
            out[mode] = {"recall@10": hits / (10 * nq), "exact_per_query": exact / nq,
                         "heap_fetches_per_query": fetched / nq, "index_pages_per_query": pages / nq}
        cur.execute("RESET vsag.rerank")
    return out


def throughput(server, system, metric, ef, nq, clients, seconds):
    """pgbench -M prepared: random query ids; returns tps and p50/p99 latency (ms)."""
    env = server.env()
    gucs = {system.ef_guc: ef, **system.extra_gucs}
    env["PGOPTIONS"] = " ".join(f"-c {k}={v}" for k, v in gucs.items())
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        script = os.path.join(tmp, "q.sql")
        with open(script, "w") as f:
            f.write(f"\\set qid random(0, {nq - 1})\n")
            f.write(query_sql(metric, 10).replace("%s", ":qid") + ";\n")
        cmd = [srv.pgbench(), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
               "-T", str(seconds), "-f", script, "-l", "--log-prefix", os.path.join(tmp, "log"), system.db]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr}")
        tps = float(re.search(r"tps = ([0-9.]+)", out.stdout).group(1))
        lat = []
        for name in os.listdir(tmp):
            if name.startswith("log"):
                with open(os.path.join(tmp, name)) as f:
                    lat.extend(int(line.split()[2]) for line in f if line.strip())
    lat = np.array(lat) / 1000.0
    return {"qps": tps, "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def connect(server, db):
    return psycopg.connect(server.dsn(db), autocommit=True)
