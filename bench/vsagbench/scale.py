"""Scaling runs: synthetic clustered data at several sizes (exact ground truth computed
here), vsag default vs pgvector HNSW m=16, build time and QPS/recall at a fixed ef_search,
plotted against N. `bench/run --scale 100000,300000,1000000 --dim 128`."""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import data, measure


def run(server, sizes, dim, ef, seconds, outdir, nq=200):
    systems = [measure.System("vsag", "vsag_bench", "vsag", "vsag.ef_search", {}),
               measure.System("pgvector", "pgvector_bench", "hnsw", "hnsw.ef_search", {"m": 16, "ef_construction": 64})]
    rows = []
    for n in sizes:
        ds = data.synthetic(n, dim, nqueries=nq, metric="l2", seed=n)
        for system in systems:
            with measure.connect(server, system.db) as conn:
                measure.load(conn, ds, data)
                build_s, size, _ = measure.build(conn, system, "l2", "4GB")
                rec = measure.recall(conn, system, ds, ef, nq)
                thr = measure.throughput(server, system, "l2", ef, nq, 2, seconds)
                rows.append({"n": n, "dim": dim, "system": system.label, "build_s": build_s, "size_bytes": size,
                             "ef": ef, **rec, **thr})
                print(f"N={n} {system.label}: build {build_s:.1f}s, recall@10 {rec['recall@10']:.3f}, "
                      f"{thr['qps']:.0f} QPS", flush=True)
                conn.execute("DROP TABLE docs, queries")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "scaling.json"), "w") as f:
        json.dump(rows, f, indent=1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    for label in dict.fromkeys(r["system"] for r in rows):
        pts = [r for r in rows if r["system"] == label]
        a1.plot([r["n"] for r in pts], [r["build_s"] for r in pts], marker="o", label=label)
        a2.plot([r["n"] for r in pts], [r["qps"] for r in pts], marker="o", label=label)
    a1.set(xlabel="rows", ylabel="build time (s)", xscale="log", yscale="log", title=f"build, {dim}-d synthetic")
    a2.set(xlabel="rows", ylabel=f"QPS at ef_search={ef} (2 clients)", xscale="log", title="query throughput")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "scaling.png"), dpi=110)
    plt.close(fig)
    return rows
