"""python -m vsagbench DATASET [options] — see bench/run."""
import argparse
import os
import platform
import subprocess
import sys
import time

from . import buildmem, data, measure, report, scale, vacuum
from . import server as srv

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gb": round(mem), "os": platform.platform()}


# Named datasets live outside the repository (README, "Benchmark data"); VSAG_DATA_DIR overrides.
DATA_DIR = os.environ.get("VSAG_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))
SMOKE_DIM = 384  # minilm-100k's dimension: the smoke's synthetic stand-in has the same shape


def dataset(spec, metric, limit, nq, smoke=False):
    if spec.startswith("synth:"):
        _, n, dim = spec.split(":")
        return data.synthetic(int(n), int(dim), nqueries=nq or 1000, metric=metric)
    prefix = data.find_prefix(spec, [DATA_DIR])
    if prefix is not None:
        return data.load_fvecs_dataset(prefix, metric, limit=limit, nqueries=nq)
    if smoke:
        # A clone without the data beside it must still pass CI: the smoke checks that the
        # pipeline works, not the numbers, so clustered synthetic vectors do.
        print(f"dataset {spec} not found in {DATA_DIR}: smoke run on synthetic {SMOKE_DIM}-d data", flush=True)
        return data.synthetic(limit, SMOKE_DIM, nqueries=nq, metric=metric)
    raise SystemExit(f"dataset {spec!r} not found: no {spec}.base.fvecs here or in {DATA_DIR} "
                     "(set VSAG_DATA_DIR, pass an fvecs path prefix, or use synth:N:DIM; see README)")


def systems(args):
    out = []
    for spec in args.vsag:
        kvs = dict(kv.split("=") for kv in spec.split(",") if kv) if spec != "default" else {}
        # vsag.* keys are session settings (e.g. vsag.prefetch_depth=0), the rest index options
        opts = {k: v for k, v in kvs.items() if not k.startswith("vsag.")}
        gucs = {k: v for k, v in kvs.items() if k.startswith("vsag.")}
        out.append(measure.System("vsag", "vsag_bench", "vsag", "vsag.ef_search", opts, gucs))
    for spec in ([] if args.no_pgvector else args.pgvector):
        m, efc = spec.split("/")
        out.append(measure.System("pgvector", "pgvector_bench", "hnsw", "hnsw.ef_search",
                                  {"m": int(m), "ef_construction": int(efc)}))
    return out


def main():
    ap = argparse.ArgumentParser(prog="bench/run")
    ap.add_argument("dataset", nargs="?", default="minilm-100k",
                    help="name under $VSAG_DATA_DIR (default ../shared/data), an fvecs path prefix, or synth:N:DIM")
    ap.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"])
    ap.add_argument("--limit", type=int, help="use only the first N base vectors (exact GT recomputed)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="10,20,40,80,120,200")
    ap.add_argument("--seconds", type=int, default=10, help="pgbench duration per point")
    ap.add_argument("--vsag", nargs="*", default=["default"],
                    help="vsag configurations, each 'default' or comma-separated index options and vsag.* "
                         "settings, e.g. quantizer=sq4,storage=codes or vsag.prefetch_depth=0")
    ap.add_argument("--pgvector", nargs="*", default=["16/64", "32/128"], help="pgvector HNSW m/ef_construction pairs")
    ap.add_argument("--no-pgvector", action="store_true")
    ap.add_argument("--rerank-queries", type=int, default=200,
                    help="queries used to count exact distances with the re-rank filter on/off")
    ap.add_argument("--out", default=None)
    ap.add_argument("--cold", action="store_true",
                    help="cold cache: restart with small shared_buffers and drop the OS page cache before every QPS point")
    ap.add_argument("--port", type=int, default=5497)
    ap.add_argument("--root", default="/tmp/vsag-bench")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI: 5,000 vectors, 100 queries, 1 s points")
    ap.add_argument("--scale", help="comma-separated sizes for a scaling run on synthetic data (e.g. 100000,1000000)")
    ap.add_argument("--dim", type=int, default=128, help="dimension of the scaling run's synthetic data")
    ap.add_argument("--build-memory", metavar="MEMS",
                    help="comma-separated maintenance_work_mem values (e.g. 64MB,1GB): build time, peak memory "
                         "and recall@10 at default settings of vsag vs pgvector HNSW, instead of the QPS sweep")
    ap.add_argument("--workers", type=int, default=1, help="max_parallel_maintenance_workers (both systems)")
    ap.add_argument("--vacuum-delete", type=float, metavar="FRACTION",
                    help="after each index's sweep: delete this fraction of the rows, time VACUUM (peak memory) "
                         "and measure recall@10 at the default ef_search; the rows are restored afterwards")
    ap.add_argument("--vacuum-mem", help="maintenance_work_mem for that VACUUM (default: the server's, 4GB)")
    args = ap.parse_args()
    if args.scale:
        return scaling(args)
    if args.build_memory:
        return build_memory(args)
    if args.smoke:
        args.limit, args.queries, args.seconds, args.ef = args.limit or 5000, 100, 1, "10,40"
    efs = [int(x) for x in args.ef.split(",")]
    ds = dataset(args.dataset, args.metric, args.limit, args.queries, smoke=args.smoke)
    nq = len(ds.queries)
    print(f"dataset {ds.name}: {len(ds.base)} x {ds.dim}, {nq} queries, metric {ds.metric}", flush=True)

    server = srv.Server(args.root, args.port)
    server.settings = {"shared_buffers": "4GB", "maintenance_work_mem": "4GB", "max_parallel_maintenance_workers": 1,
                       "max_connections": 20, "jit": "off", "fsync": "off", "synchronous_commit": "off",
                       "checkpoint_timeout": "30min", "max_wal_size": "8GB"}
    server.start(server.settings)
    try:
        res = run(server, ds, efs, nq, args)
    finally:
        server.stop()
    out = args.out or os.path.join(REPO, "bench", "results", "smoke" if args.smoke else ds.name.replace(":", "_"))
    text = report.write(res, out)
    print(text.split("## Build time")[0])
    print(f"report: {os.path.join(out, 'report.md')}")


def scaling(args):
    server = srv.Server(args.root, args.port)
    server.start({"shared_buffers": "4GB", "maintenance_work_mem": "4GB", "max_parallel_maintenance_workers": 1,
                  "jit": "off", "fsync": "off", "synchronous_commit": "off", "max_wal_size": "8GB"})
    try:
        create_dbs(server)
        out = args.out or os.path.join(REPO, "bench", "results", f"scaling-{args.dim}d")
        scale.run(server, [int(x) for x in args.scale.split(",")], args.dim, 40, args.seconds, out)
        print(f"scaling report: {out}/scaling.png")
    finally:
        server.stop()


def build_memory(args):
    ds = dataset(args.dataset, args.metric, args.limit, args.queries)
    print(f"dataset {ds.name}: {len(ds.base)} x {ds.dim}, {len(ds.queries)} queries, metric {ds.metric}", flush=True)
    server = srv.Server(args.root, args.port)
    server.start({"shared_buffers": "1GB", "max_parallel_maintenance_workers": args.workers, "jit": "off",
                  "fsync": "off", "synchronous_commit": "off", "max_wal_size": "8GB"})
    try:
        out = args.out or os.path.join(REPO, "bench", "results", "build-memory-" + ds.name.replace(":", "_"))
        buildmem.run(server, ds, args.build_memory.split(","), len(ds.queries), out,
                     ["vsag"] if args.no_pgvector else None)
    finally:
        server.stop()


def create_dbs(server):
    """One database per extension: both define a type named `vector`."""
    with measure.connect(server, "postgres") as c:
        for db, ext in (("vsag_bench", "vsag"), ("pgvector_bench", "vector")):
            c.execute(f"DROP DATABASE IF EXISTS {db}")
            c.execute(f"CREATE DATABASE {db}")
            with measure.connect(server, db) as d:
                d.execute(f"CREATE EXTENSION {ext}")


COLD_SHARED_BUFFERS = "32MB"


def cold_restart(server):
    """Restart with small shared_buffers and an empty OS page cache (root only)."""
    server.stop()
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    server.start({**server.settings, "shared_buffers": COLD_SHARED_BUFFERS})


def run(server, ds, efs, nq, args):
    create_dbs(server)
    for db in ("vsag_bench", "pgvector_bench"):
        with measure.connect(server, db) as d:
            t0 = time.perf_counter()
            measure.load(d, ds, data)
            print(f"loaded {db} in {time.perf_counter() - t0:.1f}s", flush=True)
    with measure.connect(server, "pgvector_bench") as d:
        pgv = d.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    res = {"dataset": {"name": ds.name, "n": len(ds.base), "dim": ds.dim, "metric": ds.metric, "queries": nq},
           "machine": machine(), "versions": {"postgres": server.version(), "vsag": rev or "unknown", "pgvector": pgv},
           "seconds": args.seconds, "runs": [], **({"cold": COLD_SHARED_BUFFERS} if args.cold else {})}
    deletion = vacuum.Deletion(ds, args.vacuum_delete) if args.vacuum_delete else None
    for system in systems(args):
        if args.cold:  # build with the normal settings
            server.stop()
            server.start(server.settings)
        with measure.connect(server, system.db) as conn:
            build_s, size, table_size = measure.build(conn, system, ds.metric, "4GB")
            print(f"{system.label}: built in {build_s:.1f}s, {size / 2**20:.1f} MB", flush=True)
            if not measure.uses_index(conn, ds.metric):
                raise RuntimeError(f"{system.label}: planner does not use the index")
            run = {"system": system.name, "label": system.label, "options": system.options,
                   "build_s": build_s, "size_bytes": size, "table_bytes": table_size, "sweep": []}
            for ef in efs:
                point = {"ef": ef, **measure.recall(conn, system, ds, ef, nq)}
                for clients in (1, 2):
                    if args.cold:
                        cold_restart(server)
                    point[f"c{clients}"] = measure.throughput(server, system, ds.metric, ef, nq, clients, args.seconds)
                if args.cold:  # the restarts closed it
                    conn = measure.connect(server, system.db)
                extra = ""
                if system.name == "vsag" and args.rerank_queries:
                    point["rerank"] = measure.rerank_effect(conn, ds, ef, min(nq, args.rerank_queries))
                    r = point["rerank"]
                    extra = (f" exact/q on={r['on']['exact_per_query']:.1f} (r@10 {r['on']['recall@10']:.3f})"
                             f" off={r['off']['exact_per_query']:.1f} (r@10 {r['off']['recall@10']:.3f})")
                print(f"  ef={ef}: recall@10={point['recall@10']:.3f} qps(2c)={point['c2']['qps']:.0f}{extra}", flush=True)
                run["sweep"].append(point)
            if deletion is not None:
                run["vacuum"] = vacuum.run(server, conn, system, deletion, nq, args.vacuum_mem)
            res["runs"].append(run)
            conn.execute("DROP INDEX docs_ann")
            if deletion is not None:
                vacuum.restore(conn, deletion)
    return res


if __name__ == "__main__":
    sys.exit(main())
