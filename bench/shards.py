#!/usr/bin/env python3
"""1 shard vs 2 shards on this machine, and a plan on paper to 10^8 rows.

Starts a coordinator and two shard clusters (tests/durability/shardset.py; PostgreSQL binaries from
VSAG_PG_BIN), loads synthetic clustered vectors, and measures recall@10, latency and QPS
(pgbench -M prepared, random query per transaction) for: the rows in one local table; one shard
holding every row; two shards holding half each — through vsag_search_shards, through a plain query
on the partitioned parent, and through a UNION ALL of per-partition subqueries (async Append).
An exact pass (index scans off on the shards) shows whether the shards work at the same time.
Writes a markdown report (default bench/results/shards/report.md) with the 10^8-row plan computed
from the committed single-node figures of the default index in bench/results/minilm-100k/results.json.

    VSAG_PG_BIN=<bindir> /opt/vsag-venv/bin/python bench/shards.py [--rows 100000 --dim 384]
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "durability"))
from cluster import PG_BIN  # noqa: E402
from shardset import ShardSet, clustered, vec_text  # noqa: E402

K = 10
Q = "(SELECT v FROM queries WHERE id = :qid)"
SETUPS = [  # label, SQL (one query; :qid picks the query vector)
    ("one local table (no fdw)", f"SELECT id FROM single ORDER BY v <=> {Q} LIMIT {K}"),
    ("1 shard: vsag_search_shards", f"SELECT (item).id FROM vsag_search_shards(NULL::one, 'v', {Q}, {K})"),
    ("1 shard: query on the parent", f"SELECT id FROM one ORDER BY v <=> {Q} LIMIT {K}"),
    ("2 shards: vsag_search_shards", f"SELECT (item).id FROM vsag_search_shards(NULL::items, 'v', {Q}, {K})"),
    ("2 shards: query on the parent", f"SELECT id FROM items ORDER BY v <=> {Q} LIMIT {K}"),
    ("2 shards: UNION ALL per partition (async Append)",
     f"SELECT id FROM ((SELECT id, v <=> {Q} AS d FROM items_s1 ORDER BY 2 LIMIT {K}) UNION ALL "
     f"(SELECT id, v <=> {Q} AS d FROM items_s2 ORDER BY 2 LIMIT {K})) u ORDER BY d + 0 LIMIT {K}"),
]


def pgbench(cl, sql, clients, seconds, nq, options=""):
    env = dict(os.environ, PGOPTIONS=options)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        script = os.path.join(tmp, "q.sql")
        with open(script, "w") as f:
            f.write(f"\\set qid random(0, {nq - 1})\n{sql};\n")
        cmd = [os.path.join(PG_BIN, "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
               "-T", str(seconds), "-f", script, "-l", "--log-prefix", os.path.join(tmp, "log"),
               "-h", cl.root, "-p", str(cl.port), "-U", "postgres", "postgres"]
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


def build(ss, data, nq, dim, opts):
    """items: 2 foreign partitions (half the rows each); one: 1 foreign partition on shard 1 with
    every row (remote table items_all); single: every row in one coordinator table."""
    ss.create(dim, local_partition=False, opts=opts)
    with ss.shards[0].connect() as s1:
        s1.execute(f"CREATE TABLE items_all (id bigint PRIMARY KEY, note text, v vector({dim}))")
    with ss.coord.connect() as c:
        c.execute(f"CREATE TABLE one (id bigint NOT NULL, note text, v vector({dim})) PARTITION BY HASH (id)")
        c.execute("CREATE FOREIGN TABLE one_s1 PARTITION OF one FOR VALUES WITH (MODULUS 1, REMAINDER 0) "
                  "SERVER shard1 OPTIONS (table_name 'items_all')")
        c.execute(f"CREATE TABLE queries (id int PRIMARY KEY, v vector({dim}))")
        with c.cursor() as cur:
            t0 = time.time()
            ss.load(data[:-nq], also=("one",))
            with cur.copy("COPY queries (id, v) FROM STDIN") as cp:
                for i, row in enumerate(data[-nq:]):
                    cp.write(f"{i}\t{vec_text(row)}\n")
            print(f"loaded in {time.time() - t0:.0f} s", flush=True)
    t0 = time.time()
    ss.index()
    with ss.shards[0].connect() as s1:
        s1.execute(f"CREATE INDEX items_all_v_idx ON items_all USING vsag (v vector_cosine_ops) WITH ({ss.opts})")
        s1.execute("ANALYZE items_all")
    with ss.coord.connect() as c:
        c.execute("ANALYZE one")
        c.execute("ANALYZE queries")
    print(f"indexed in {time.time() - t0:.0f} s", flush=True)


def shard_setting(ss, name, value):
    for s in ss.shards:
        with s.connect() as c:
            c.execute(f"ALTER SYSTEM SET {name} = {value}" if value is not None else f"ALTER SYSTEM RESET {name}")
            c.execute("SELECT pg_reload_conf()")


def measure(ss, nq, seconds):
    with ss.coord.connect() as c:
        c.prepare_threshold = None  # a plan prepared with index scans off would be reused below
        c.execute("SET enable_indexscan = off")
        exact_sql = f"SELECT id FROM single ORDER BY v <=> (SELECT v FROM queries WHERE id = %s) LIMIT {K}"
        truth = [{r[0] for r in c.execute(exact_sql, (i,)).fetchall()} for i in range(nq)]
        c.execute("RESET enable_indexscan")
        rows = []
        for label, sql in SETUPS:
            q = sql.replace(":qid", "%(qid)s")
            got = [[r[0] for r in c.execute(q, {"qid": i}).fetchall()] for i in range(nq)]
            rec = sum(len(set(g) & t) for g, t in zip(got, truth)) / (K * nq)
            r1 = pgbench(ss.coord, sql, 1, seconds, nq)
            r2 = pgbench(ss.coord, sql, 2, seconds, nq)
            rows.append({"setup": label, "recall@10": rec, "c1": r1, "c2": r2})
            print(f"{label}: recall {rec:.4f}, c1 {r1['qps']:.0f} QPS p50 {r1['p50_ms']:.2f} ms, "
                  f"c2 {r2['qps']:.0f} QPS", flush=True)
    # exact scans on the shards: every shard works for tens of ms, so overlap shows in latency
    shard_setting(ss, "enable_indexscan", "off")
    exact = []
    try:
        for label, sql in SETUPS[1:]:
            r = pgbench(ss.coord, sql, 1, max(3, seconds // 2), nq)
            exact.append({"setup": label, "c1": r})
            print(f"exact {label}: p50 {r['p50_ms']:.1f} ms", flush=True)
    finally:
        shard_setting(ss, "enable_indexscan", None)
    return rows, exact


def committed_figures():
    """Per-row figures of the default index from the committed single-node benchmark."""
    path = os.path.join(REPO, "bench", "results", "minilm-100k", "results.json")
    with open(path) as f:
        res = json.load(f)
    n = res["dataset"]["n"]
    # the default index: a vsag run with no options (its label is plain "vsag")
    run = next(r for r in res["runs"] if r["system"] == "vsag" and r["label"] == "vsag")
    sweep = sorted(run["sweep"], key=lambda p: p["recall@10"])
    rec = [p["recall@10"] for p in sweep]
    # QPS per core: pgbench with 2 clients keeps both cores busy (client included), halved
    qps_core = float(np.interp(0.95, rec, [p["c2"]["qps"] / 2 for p in sweep]))
    p50 = float(np.interp(0.95, rec, [p["c1"]["p50_ms"] for p in sweep]))
    ef = float(np.interp(0.95, rec, [p["ef"] for p in sweep]))
    return {"source": os.path.relpath(path, REPO), "label": run["label"], "n": n, "dim": res["dataset"]["dim"],
            "index_bytes_row": run["size_bytes"] / n, "table_bytes_row": run["table_bytes"] / n,
            "build_s_row": run["build_s"] / n, "cores": res["machine"]["cores"], "qps_core_095": qps_core,
            "p50_ms_095": p50, "ef_095": ef, "postgres": res["versions"]["postgres"]}


def plan_1e8(f, overhead_ms, coord_qps):
    """10^8 rows of 384-d MiniLM vectors on shards of 12.5M rows (8 shards); arithmetic shown."""
    total, shards = 10 ** 8, 8
    per = total // shards
    gb = 1e9
    idx = f["index_bytes_row"] * per / gb
    heap = f["table_bytes_row"] * per / gb
    raw = f["dim"] * 4 * per / gb
    build_core_s = f["build_s_row"] * f["cores"] * per
    hops = np.log(per) / np.log(f["n"])
    qps_core = f["qps_core_095"] / hops
    L = []
    L.append(f"Inputs (committed, single node, from `{f['source']}`: {f['label']}, {f['n']:,} × {f['dim']}-d "
             f"MiniLM, {f['postgres']}, {f['cores']} cores):")
    L.append("")
    L.append("| figure | value | how |")
    L.append("|---|---|---|")
    L.append(f"| index bytes per row | {f['index_bytes_row']:.0f} B | size_bytes / rows |")
    L.append(f"| table bytes per row (heap, vectors inline/TOAST) | {f['table_bytes_row']:.0f} B | table_bytes / rows |")
    L.append(f"| build seconds per row | {f['build_s_row'] * 1e6:.0f} µs wall on {f['cores']} cores "
             f"= {f['build_s_row'] * f['cores'] * 1e6:.0f} core-µs | build_s / rows |")
    L.append(f"| QPS per core at recall@10 0.95 | {f['qps_core_095']:,.0f} (ef_search ≈ {f['ef_095']:.0f}) | "
             f"2-client pgbench QPS / 2, interpolated at recall 0.95 |")
    L.append(f"| latency at recall 0.95 (1 client, p50) | {f['p50_ms_095']:.2f} ms | interpolated |")
    L.append(f"| fan-out overhead of vsag_search_shards (this run) | {overhead_ms:.2f} ms | 2-shard function p50 − one "
             "local table p50, 1 client; measured with every server on the same 2 busy cores, so an upper bound |")
    L.append(f"| calls per second one coordinator core sustains (this run) | ≈ {coord_qps:,.0f} | 2-shard function, "
             "2 clients, QPS / 2 cores (the cores also ran both shards and pgbench, so a lower bound) |")
    L.append("")
    L.append(f"Plan: **{shards} shards × {per / 1e6:.1f} M rows** (hash on the key, one postgres_fdw foreign "
             "partition per shard, vsag_search_shards from the coordinator; a read replica per shard "
             "for more QPS or availability).")
    L.append("")
    L.append("| per shard | value |")
    L.append("|---|---|")
    L.append(f"| vsag index | {idx:.1f} GB (keep in shared_buffers / page cache) |")
    L.append(f"| table (heap with vectors) | {heap:.1f} GB on disk; codes-only re-rank fetches ~13 heap rows per "
             "query, so keep it in RAM or on NVMe |")
    L.append(f"| RAM | ≥ {idx + heap:.0f} GB to serve from memory ({idx:.1f} index + {heap:.1f} heap); "
             f"{idx * 1.5 + 4:.0f} GB if the heap may come from NVMe |")
    L.append(f"| maintenance_work_mem for one in-memory build | ≥ {raw:.1f} GB (raw float vectors; below it the "
             "rows go to a temporary file and the graph is built over 8-bit codes, or in overlapping "
             "partitions when even those do not fit: slower, never row by row) |")
    L.append(f"| build time | {build_core_s / 3600:.1f} core-hours → ~{build_core_s / 16 / 60:.0f} min on 16 cores "
             "(linear in rows from the 100k figure; the graph build grows a little faster than linear, so "
             "treat as a lower bound) |")
    L.append(f"| disk | ~{(idx + heap) * 1.3:.0f} GB (index + heap + 30% for WAL, FSM, bloat) |")
    L.append("")
    L.append(f"QPS: a top-k query visits every shard, so the cluster answers as fast as one shard. Graph "
             f"search work grows roughly with log(n): log({per:,}) / log({f['n']:,}) = {hops:.2f}× the "
             f"per-query work at 100k rows (and a larger ef_search may be needed for the same recall — "
             f"to be measured), i.e. ≈ {qps_core:,.0f} QPS per core per shard. With 16 cores per shard: "
             f"**≈ {qps_core * 16:,.0f} QPS for the whole 10^8 rows** at recall@10 ≈ 0.95; more QPS = more "
             f"replicas per shard (each adds a full copy of that shard's throughput), not more shards.")
    L.append("")
    L.append(f"Coordinator: vsag_search_shards is plpgsql over dblink, and its per-call work (catalog lookups, "
             f"an index check and the settings on every shard, rows as text) costs far more than one shard's "
             f"search. At ≈ {coord_qps:,.0f} calls per coordinator core (measured here, pessimistic), "
             f"{qps_core * 16:,.0f} QPS would need ≈ {qps_core * 16 / coord_qps:,.0f} coordinator cores. "
             "Coordinators hold no data (only the partition definitions), so any number can run side by side "
             "(every shard can also be a coordinator); at this scale the fan-out should move into the extension "
             "(C, libpq's asynchronous API, prepared statements on the shards), which this plan assumes is done "
             "before going past a few thousand QPS.")
    L.append("")
    lat = f["p50_ms_095"] * hops + overhead_ms
    L.append(f"Latency: shards work at the same time, so p50 ≈ one shard's search ({f['p50_ms_095']:.2f} ms × "
             f"{hops:.2f}) + fan-out overhead ({overhead_ms:.2f} ms measured here on loopback, on busy shared "
             f"cores) + network "
             f"round trip (~0.1–0.3 ms in one data centre) ≈ **{lat + 0.2:.1f} ms**; p99 follows the slowest "
             "shard, so shards should be equal in size and hardware.")
    L.append("")
    L.append("Recall: each shard returns its own top-k, so the merged answer misses a true neighbour only "
             "if its own shard's search missed it; measured sharded recall is at or above one node's "
             "(tests/durability/shards.py checks ≥ single − 0.01).")
    return L


def report(args, rows, exact, figures, load):
    ver = subprocess.run([os.path.join(PG_BIN, "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
    by = {r["setup"]: r for r in rows}
    base = by["one local table (no fdw)"]["c1"]["p50_ms"]
    overhead = by["2 shards: vsag_search_shards"]["c1"]["p50_ms"] - base
    coord_qps = by["2 shards: vsag_search_shards"]["c2"]["qps"] / 2
    L = ["# Sharding: 1 shard vs 2 shards, and a plan to 10^8 rows", "",
         f"Generated by `bench/shards.py --rows {args.rows} --dim {args.dim} --queries {args.queries} "
         f"--seconds {args.seconds}` on {platform.machine()} with {os.cpu_count()} cores, {ver}. "
         f"{args.rows:,} synthetic clustered unit vectors ({args.dim}-d, spread in a {args.latent}-d subspace, "
         "cosine), default vsag index "
         f"(`{args.opts}`) on every shard and on the local table; QPS and latency from "
         "`pgbench -M prepared` on the coordinator, random query per transaction.", "",
         f"**Honest caveat: all three servers and pgbench share the same {os.cpu_count()} cores.** Two shards here "
         "cannot add CPU: they split the rows (each shard searches a graph half the size) and run at the same "
         "time, but the coordinator, both shards and the client compete for the same cores. What this "
         "measures is the fan-out overhead and whether the shards overlap; the scaling of throughput with "
         "machines is the arithmetic in the plan below.", "",
         f"Load average (1 min) when the measurements started / ended: {load[0]:.1f} / {load[1]:.1f} on "
         f"{os.cpu_count()} cores (other jobs share this machine; above {os.cpu_count()} the numbers include "
         "waiting for a CPU, so compare rows of this table with each other, not with other reports).", "",
         "| setup | recall@10 | 1 client: QPS | p50 ms | p99 ms | 2 clients: QPS | p50 ms | p99 ms |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['setup']} | {r['recall@10']:.4f} | {r['c1']['qps']:,.0f} | {r['c1']['p50_ms']:.2f} | "
                 f"{r['c1']['p99_ms']:.2f} | {r['c2']['qps']:,.0f} | {r['c2']['p50_ms']:.2f} | {r['c2']['p99_ms']:.2f} |")
    L += ["", "Do the shards work at the same time? Exact search (index scans off on the shards: each shard "
          "scans all its rows, tens of ms), 1 client:", "",
          "| setup | p50 ms | p99 ms |", "|---|---|---|"]
    for r in exact:
        L.append(f"| {r['setup']} | {r['c1']['p50_ms']:.1f} | {r['c1']['p99_ms']:.1f} |")
    ex = {r["setup"]: r["c1"]["p50_ms"] for r in exact}
    one, fn2, par2 = (ex["1 shard: vsag_search_shards"], ex["2 shards: vsag_search_shards"],
                      ex["2 shards: query on the parent"])
    L += ["", f"Two shards scanning half the rows each: vsag_search_shards takes {fn2 / one:.2f}× the one-shard "
          f"time (the halves run at the same time; 0.5× would be perfect overlap), the plain parent query "
          f"{par2 / one:.2f}× (its Merge Append reads the shards one after another; without a pushed-down "
          "LIMIT each shard also sorts all its rows instead of keeping a top-k).", "",
          "What the table shows: the plain query on the parent is the slowest (no LIMIT below the Merge Append: "
          "each shard's index scan produces a `fetch_size` batch of 100 rows, and the shards are read in turn). "
          "vsag_search_shards and the UNION ALL of per-partition subqueries both run the shards at once with "
          "ORDER BY + LIMIT pushed down; the UNION ALL has less per-call work (no plpgsql, no index check, no "
          "settings), vsag_search_shards forwards vsag.* settings, checks every shard's index and names a "
          "failed shard. Recall of two shards is higher than one node's at the same ef_search: each shard "
          "searches half the rows for its own top-10.", "",
          "## A plan on paper to 10^8 rows", ""]
    L += plan_1e8(figures, overhead, coord_qps)
    L += ["", "The single-node figures are the committed ones; rerun `bench/run minilm-100k` and this "
          "command to refresh them."]
    return "\n".join(L) + "\n"


def write_report(out):
    with open(os.path.join(os.path.dirname(out), "results.json")) as f:
        res = json.load(f)
    text = report(argparse.Namespace(**res["args"]), res["rows"], res["exact"], committed_figures(), res["load"])
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--latent", type=int, default=24, help="intrinsic dimension of the synthetic data")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--port", type=int, default=5485, help="coordinator port; shards use the next two")
    ap.add_argument("--opts", default="m = 32, ef_construction = 128", help="vsag index options (defaults)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "shards", "report.md"))
    ap.add_argument("--keep", action="store_true", help="leave the clusters running")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report from results.json next to --out (e.g. after refreshing the committed figures)")
    args = ap.parse_args()
    if args.report_only:
        write_report(args.out)
        return
    ss = ShardSet(args.port, root="/tmp/vsag-shardbench").start()
    try:
        data = clustered(args.rows + args.queries, args.dim, seed=7, centers=100, latent=args.latent)
        build(ss, data, args.queries, args.dim, args.opts)
        load = [os.getloadavg()[0]]
        rows, exact = measure(ss, args.queries, args.seconds)
        load.append(os.getloadavg()[0])
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(os.path.join(os.path.dirname(args.out), "results.json"), "w") as f:
            json.dump({"args": vars(args), "rows": rows, "exact": exact, "load": load}, f, indent=1)
        write_report(args.out)
    finally:
        if not args.keep:
            ss.stop()


if __name__ == "__main__":
    main()
