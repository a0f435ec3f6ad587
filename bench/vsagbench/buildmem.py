"""Build time and peak memory of vsag vs pgvector HNSW in one PostgreSQL 16 server, at each
given maintenance_work_mem, plus recall@10 at default query settings (vsag.ef_search and
hnsw.ef_search untouched). Memory is the building backend's (and, for pgvector, its parallel
workers') resident memory sampled every 20 ms from /proc: private (RssAnon) and shared
(RssShmem, which also counts shared buffers the build touches), each as the peak minus the
value before CREATE INDEX. Both systems get the same max_parallel_maintenance_workers."""
import json
import os
import threading
import time

from . import measure

SYSTEMS = [
    measure.System("vsag", "vsag_bench", "vsag", "vsag.ef_search", {}),
    measure.System("pgvector", "pgvector_bench", "hnsw", "hnsw.ef_search", {"m": 16, "ef_construction": 64}),
]


def _rss(pid):
    out = {"RssAnon": 0, "RssShmem": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k = line.split(":")[0]
                if k in out:
                    out[k] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


class PeakSampler(threading.Thread):
    """Peak RssAnon / RssShmem of a backend plus its parallel workers (found by leader pid)."""

    def __init__(self, server, pid):
        super().__init__(daemon=True)
        self.pid, self.stop_flag = pid, threading.Event()
        self.conn = measure.connect(server, "postgres")
        self.base = _rss(pid)
        self.peak = dict(self.base)

    def run(self):
        while not self.stop_flag.is_set():
            pids = [self.pid] + [r[0] for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s", (self.pid, self.pid))]
            tot = {"RssAnon": 0, "RssShmem": 0}
            for p in pids:
                for k, v in _rss(p).items():
                    tot[k] += v
            for k in tot:
                self.peak[k] = max(self.peak[k], tot[k])
            time.sleep(0.02)

    def finish(self):
        self.stop_flag.set()
        self.join()
        self.conn.close()
        return {k: self.peak[k] - self.base[k] for k in self.peak}


def recall_default(conn, ds, nq, gt=None):
    """Recall@10 at the session's settings against `gt` (default: the dataset's)."""
    gt = ds.gt if gt is None else gt
    hits = 0
    with conn.cursor() as cur:
        sql = measure.query_sql(ds.metric, 10)
        for qi in range(nq):
            cur.execute(sql, (qi,), prepare=True)
            got = {r[0] for r in cur.fetchall()}
            hits += len(got & set(gt[qi, :10].tolist()))
    return hits / (nq * 10)


def run(server, ds, mems, nq, out, systems=None):
    from .__main__ import create_dbs
    from . import data
    systems = [s for s in SYSTEMS if systems is None or s.name in systems]
    create_dbs(server)
    for s in systems:
        with measure.connect(server, s.db) as c:
            measure.load(c, ds, data)
    rows = []
    for mem in mems:
        for s in systems:
            with measure.connect(server, s.db) as c:
                pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
                c.execute("DROP INDEX IF EXISTS docs_ann")
                c.execute("CHECKPOINT")
                sampler = PeakSampler(server, pid)
                sampler.start()
                notices = []
                c.add_notice_handler(lambda d: notices.append(d.message_primary))
                try:
                    build_s, size, _ = measure.build(c, s, ds.metric, mem)
                finally:
                    peak = sampler.finish()
                c.execute("RESET maintenance_work_mem")
                rec = recall_default(c, ds, nq)
            row = {"system": s.name, "maintenance_work_mem": mem, "build_s": round(build_s, 1),
                   "peak_private_mb": round(peak["RssAnon"] / 2**20, 1),
                   "peak_shared_mb": round(peak["RssShmem"] / 2**20, 1),
                   "index_mb": round(size / 2**20, 1), "recall@10": round(rec, 4), "notices": notices}
            print(json.dumps(row), flush=True)
            rows.append(row)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "build_memory.json"), "w") as f:
        json.dump({"dataset": ds.name, "n": len(ds.base), "dim": ds.dim, "queries": nq, "rows": rows}, f, indent=1)
    lines = [f"# Build time and memory: {ds.name} ({len(ds.base)} x {ds.dim}, {ds.metric})", "",
             "| system | maintenance_work_mem | build s | peak private MB | peak shared MB | index MB | recall@10 (default GUCs) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['system']} | {r['maintenance_work_mem']} | {r['build_s']} | {r['peak_private_mb']} | "
                     f"{r['peak_shared_mb']} | {r['index_mb']} | {r['recall@10']} |")
    with open(os.path.join(out, "build_memory.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
