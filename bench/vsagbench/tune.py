"""python -m vsagbench.tune DATASET [options] — see bench/tune. Issue 13's numbers: vsag_tune
against the cheapest hand-set ef_search on held-out queries (recall@10, QPS from pgbench -M
prepared -c 2 -j 2 in interleaved rounds, tuning time against build time), and with --ilp the
index-level check: an m=32 index searched with vsag.search_m=16 against a separate m=16 build."""
import argparse
import json
import os
import sys
import time

from . import data, measure, tunecheck
from . import server as srv
from .__main__ import REPO, create_dbs, dataset, machine


def build(conn, options, metric):
    system = measure.System("vsag", "vsag_bench", "vsag", "vsag.ef_search", options)
    build_s, size, _ = measure.build(conn, system, metric, "4GB")
    print(f"built vsag {options or '(default)'} in {build_s:.1f}s, {size / 2**20:.1f} MB", flush=True)
    return build_s, size


def sweep(conn, server, metric, gt, efs, gucs, seconds):
    out = []
    for ef in efs:
        g = {"vsag.ef_search": ef, **gucs}
        r = tunecheck.recall(conn, metric, gt, g)
        q = tunecheck.qps(srv.pgbench(), server.env(), "vsag_bench", metric, len(gt), {**g, "enable_seqscan": "off"},
                          seconds)
        print(f"  {gucs or ''} ef_search={ef}: recall@10={r:.4f} {q:.0f} QPS", flush=True)
        out.append({"ef": ef, "recall@10": r, "qps": q})
    return out


def ilp(conn, server, ds, efs, seconds):
    """m=32 searched at search_m=16 (and at all 32) vs a separate m=16 build."""
    res = {}
    b32, s32 = build(conn, {"m": 32}, ds.metric)
    res["m32"] = {"build_s": b32, "size_bytes": s32,
                  "search_m16": sweep(conn, server, ds.metric, ds.gt, efs, {"vsag.search_m": 16}, seconds),
                  "search_all": sweep(conn, server, ds.metric, ds.gt, efs, {}, seconds)}
    b16, s16 = build(conn, {"m": 16}, ds.metric)
    res["m16"] = {"build_s": b16, "size_bytes": s16, "search_all": sweep(conn, server, ds.metric, ds.gt, efs, {}, seconds)}
    return res


def report(res):
    d, t, h = res["dataset"], res["tune"]["tuned"], res["tune"]["best_hand_set"]
    lines = [f"# vsag_tune on {d['name']} ({d['n']} x {d['dim']}, {d['metric']}, {d['queries']} held-out queries)", "",
             f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores. vsag {res['vsag']}. "
             f"QPS: pgbench -M prepared -c 2 -j 2, {res['seconds']} s per point; tuned and hand-set timed in "
             f"{len(t['qps_rounds'])} interleaved rounds (median).", "",
             "| | recall@10 (held-out) | QPS | settings |", "|---|---|---|---|",
             f"| `vsag_tune('docs_ann', {res['tune']['target']})`, then default GUCs | {t['recall@10']:.4f} | "
             f"{t['qps']:.0f} | {', '.join(t['stored'] or [])} |",
             f"| cheapest hand-set `vsag.ef_search` reaching {res['tune']['target']} | {h['recall@10']:.4f} | "
             f"{h['qps']:.0f} | ef_search={h['ef']} |", "",
             f"QPS ratio tuned / hand-set: **{res['tune']['qps_ratio']:.2f}** (goal >= 0.85). Tuning time "
             f"{t['tune_s']:.1f} s ({t['tried']} settings, sample {res['tune']['sample']}) vs build time "
             f"{res['build_s']:.1f} s.", "", "Hand-set sweep (recall on the held-out queries):", "",
             "| ef_search | recall@10 | QPS |", "|---|---|---|"]
    for p in res["tune"]["sweep"]:
        lines.append(f"| {p['ef']} | {p['recall@10']:.4f} | {p.get('qps', float('nan')):.0f} |")
    if "ilp" in res:
        i = res["ilp"]
        lines += ["", "## ILP: one m=32 build searched at vsag.search_m=16 vs a separate m=16 build", "",
                  f"Builds: m=32 {i['m32']['build_s']:.1f} s, {i['m32']['size_bytes'] / 2**20:.1f} MB; "
                  f"m=16 {i['m16']['build_s']:.1f} s, {i['m16']['size_bytes'] / 2**20:.1f} MB.", "",
                  "| ef_search | m=32, search_m=16: recall / QPS | m=16 build: recall / QPS | m=32, all: recall / QPS |",
                  "|---|---|---|---|"]
        for a, b, c in zip(i["m32"]["search_m16"], i["m16"]["search_all"], i["m32"]["search_all"]):
            lines.append(f"| {a['ef']} | {a['recall@10']:.4f} / {a['qps']:.0f} | {b['recall@10']:.4f} / {b['qps']:.0f} "
                         f"| {c['recall@10']:.4f} / {c['qps']:.0f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(prog="bench/tune")
    ap.add_argument("dataset", nargs="?", default="minilm-100k")
    ap.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"])
    ap.add_argument("--limit", type=int, help="use only the first N base vectors (exact GT recomputed)")
    ap.add_argument("--queries", type=int, default=1000, help="held-out queries")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--sample", type=int, default=200, help="vsag_tune's sample")
    ap.add_argument("--ef", default="10,15,20,25,30,35,40,50,60,80,100,120,160,200,300,400")
    ap.add_argument("--seconds", type=int, default=10, help="pgbench duration per point")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved tuned / hand-set QPS rounds")
    ap.add_argument("--ilp", action="store_true", help="also the m=32 at search_m=16 vs m=16 comparison")
    ap.add_argument("--ilp-ef", default="20,40,60,80,120,200")
    ap.add_argument("--out", default=None)
    ap.add_argument("--port", type=int, default=5497)
    ap.add_argument("--root", default="/tmp/vsag-bench")
    args = ap.parse_args()
    ds = dataset(args.dataset, args.metric, args.limit, args.queries)
    print(f"dataset {ds.name}: {len(ds.base)} x {ds.dim}, {len(ds.queries)} held-out queries", flush=True)
    server = srv.Server(args.root, args.port)
    server.start({"shared_buffers": "4GB", "maintenance_work_mem": "4GB", "max_parallel_maintenance_workers": 1,
                  "max_connections": 20, "jit": "off", "fsync": "off", "synchronous_commit": "off",
                  "max_wal_size": "8GB"})
    try:
        create_dbs(server)
        with measure.connect(server, "vsag_bench") as conn:
            measure.load(conn, ds, data)
            build_s, size = build(conn, {}, ds.metric)
            res = {"dataset": {"name": ds.name, "n": len(ds.base), "dim": ds.dim, "metric": ds.metric,
                               "queries": len(ds.queries)},
                   "machine": machine(), "vsag": os.popen(f"git -C {REPO} rev-parse --short HEAD").read().strip(),
                   "seconds": args.seconds, "build_s": build_s, "size_bytes": size}
            res["tune"] = tunecheck.compare(conn, srv.pgbench(), server.env(), "vsag_bench", ds.metric, ds.gt,
                                            [int(x) for x in args.ef.split(",")], target=args.target,
                                            sample=args.sample, seconds=args.seconds, rounds=args.rounds)
            if args.ilp:
                res["ilp"] = ilp(conn, server, ds, [int(x) for x in args.ilp_ef.split(",")], args.seconds)
    finally:
        server.stop()
    out = args.out or os.path.join(REPO, "bench", "results", ds.name.replace(":", "_") + "-tune")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = report(res)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"report: {os.path.join(out, 'report.md')}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s")
    sys.exit(0)
