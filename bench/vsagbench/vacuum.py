"""VACUUM after deletes (`bench/run ... --vacuum-delete 0.1`): once a system's sweep is done,
delete every (1/fraction)-th row, time a VACUUM of the table while sampling the backend's
memory (private RssAnon growth, as the build-memory runs do; `--vacuum-mem` sets its
maintenance_work_mem), then measure recall@10 at the default ef_search against exact ground
truth over the rows that are left. The rows come back afterwards, so the next index in the
same database sees the whole table."""
import time

import numpy as np

from . import data, measure
from .buildmem import PeakSampler, recall_default


class Deletion:
    """The rows deleted (the same for every system) and the ground truth without them."""

    def __init__(self, ds, fraction):
        self.step = max(2, round(1 / fraction))
        ids = np.arange(len(ds.base))
        self.deleted = ids[ids % self.step == 0]
        self.kept = ids[ids % self.step != 0]
        self._gt = None
        self.ds = ds

    def gt(self):
        if self._gt is None:
            t0 = time.perf_counter()
            local = data.exact_knn(self.ds.base[self.kept], self.ds.queries, self.ds.metric, 10)
            self._gt = self.kept[local]
            print(f"  ground truth without the deleted rows: {time.perf_counter() - t0:.1f}s", flush=True)
        return self._gt


def run(server, conn, system, deletion, nq, mem=None):
    ds = deletion.ds
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.execute(f"DELETE FROM docs WHERE id % {deletion.step} = 0")
    conn.execute("CHECKPOINT")
    size_before = conn.execute("SELECT pg_relation_size('docs_ann')").fetchone()[0]
    sampler = PeakSampler(server, pid)
    sampler.start()
    if mem:
        conn.execute(f"SET maintenance_work_mem = '{mem}'")
    t0 = time.perf_counter()
    try:
        conn.execute("VACUUM docs")
    finally:
        conn.execute("RESET maintenance_work_mem")
        vacuum_s = time.perf_counter() - t0
        peak = sampler.finish()
    size_after = conn.execute("SELECT pg_relation_size('docs_ann')").fetchone()[0]
    for g in (system.ef_guc, *system.extra_gucs):
        conn.execute(f"RESET {g}")
    recall = recall_default(conn, ds, nq, deletion.gt())
    out = {"deleted": int(len(deletion.deleted)), "vacuum_s": round(vacuum_s, 2),
           "maintenance_work_mem": mem or conn.execute("SHOW maintenance_work_mem").fetchone()[0],
           "peak_private_mb": round(peak["RssAnon"] / 2**20, 1), "peak_shared_mb": round(peak["RssShmem"] / 2**20, 1),
           "size_before_bytes": size_before, "size_after_bytes": size_after,
           "recall@10_default": round(recall, 4)}
    print(f"  VACUUM after deleting {out['deleted']} rows ({out['maintenance_work_mem']}): {vacuum_s:.1f}s, peak private "
          f"{out['peak_private_mb']} MB, recall@10 at default ef_search {out['recall@10_default']:.3f}", flush=True)
    return out


def restore(conn, deletion):
    """Puts the deleted rows back (after the index is dropped)."""
    ids = deletion.deleted
    with conn.cursor() as cur:
        measure.copy_rows(cur, "docs", ids.astype(np.int32), deletion.ds.base[ids], data)
        cur.execute("VACUUM (ANALYZE) docs")
