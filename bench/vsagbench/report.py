"""Markdown report, PNG plots and headline ratios from a results dict."""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def qps_at(points, target, clients):
    """QPS at recall@10 = target, linearly interpolated on the curve (None if not reached)."""
    pts = sorted((p["recall@10"], p[f"c{clients}"]["qps"]) for p in points)
    best = None
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            q = q0 + (q1 - q0) * (target - r0) / (r1 - r0)
            best = q if best is None else max(best, q)
    for r, q in pts:
        if r >= target:
            best = q if best is None else max(best, q)
            break
    # higher-recall points with more QPS (non-monotone curves) count too
    for r, q in pts:
        if r >= target and (best is None or q > best):
            best = q
    return best


def headline(res, clients=2):
    runs = res["runs"]
    vs = [r for r in runs if r["system"] == "vsag"]
    pg = [r for r in runs if r["system"] == "pgvector"]
    lines = []
    def best(runs, target):
        pts = [(q, r["label"]) for r in runs if (q := qps_at(r["sweep"], target, clients))]
        return max(pts) if pts else (None, "–")

    for target in (0.90, 0.95, 0.99):
        (v, vl), (p, pl) = best(vs, target), best(pg, target)
        ratio = f"{v / p:.2f}x" if v and p else "n/a"
        lines.append((target, v, p, ratio, vl, pl))
    return lines


def fmt(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"


def write(res, outdir):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    plot(res, outdir)
    md = [f"# vsag vs pgvector — {res['dataset']['name']}", ""]
    m = res["machine"]
    if res.get("cold"):
        md += ["**Cold cache**: before every QPS point the server restarts with shared_buffers = "
               f"{res['cold']} and the OS page cache is dropped, so each point starts with no index "
               "page in memory (its QPS includes warming up).", ""]
    if res.get("note"):
        md += [f"Note: {res['note']}", ""]
    md += [f"- Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gb']} GB RAM",
           f"- Server: {res['versions']['postgres']}; vsag {res['versions']['vsag']}; "
           f"pgvector {res['versions']['pgvector']} — both in the same server, same run",
           f"- Data: {res['dataset']['n']:,} × {res['dataset']['dim']} ({res['dataset']['metric']}), "
           f"{res['dataset']['queries']} queries; QPS from `pgbench -M prepared` ({res['seconds']} s per point), "
           f"recall against exact ground truth", ""]
    md += ["## Headline (2 clients)", "", "| recall@10 | vsag QPS | pgvector QPS | vsag / pgvector | best vsag | best pgvector |",
           "|---|---|---|---|---|---|"]
    for target, v, p, ratio, vl, pl in headline(res):
        md.append(f"| {target:.2f} | {fmt(v)} | {fmt(p)} | {ratio} | {vl} | {pl} |")
    pg = [r for r in res["runs"] if r["system"] == "pgvector"]
    if pg:
        ref = pg[0]
        md += ["", f"Size and build time relative to {ref['label']}:", "", "| vsag configuration | size ratio | build time ratio |",
               "|---|---|---|"]
        for r in res["runs"]:
            if r["system"] == "vsag":
                md.append(f"| {r['label']} | {r['size_bytes'] / ref['size_bytes']:.2f}x | {r['build_s'] / ref['build_s']:.2f}x |")
    md += ["", "## Build time and size", "", "| index | build (s) | size (MB) | size / raw data |", "|---|---|---|---|"]
    raw = res["dataset"]["n"] * res["dataset"]["dim"] * 4
    for r in res["runs"]:
        md.append(f"| {r['label']} | {r['build_s']:.1f} | {r['size_bytes'] / 2**20:.1f} | {r['size_bytes'] / raw:.2f} |")
    md += ["", "## Sweeps", "", "| index | ef_search | recall@1 | recall@10 | recall@100 | QPS 1c | QPS 2c | p50 ms (2c) | p99 ms (2c) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        for p in r["sweep"]:
            md.append(f"| {r['label']} | {p['ef']} | {p['recall@1']:.3f} | {p['recall@10']:.3f} | {p['recall@100']:.3f} | "
                      f"{fmt(p['c1']['qps'])} | {fmt(p['c2']['qps'])} | {p['c2']['p50_ms']:.2f} | {p['c2']['p99_ms']:.2f} |")
    rr = [(r, p) for r in res["runs"] for p in r["sweep"] if "rerank" in p]
    if rr:
        md += ["", "## Selective re-rank (LIMIT 10, first queries)", "",
               "| index | ef_search | recall@10 filter on | recall@10 off | exact dist./query on | off | saved "
               "| index pages/query | heap fetches/query |",
               "|---|---|---|---|---|---|---|---|---|"]
        for r, p in rr:
            on, off = p["rerank"]["on"], p["rerank"]["off"]
            saved = 1 - on["exact_per_query"] / off["exact_per_query"] if off["exact_per_query"] else 0
            pages = on.get("index_pages_per_query")
            md.append(f"| {r['label']} | {p['ef']} | {on['recall@10']:.3f} | {off['recall@10']:.3f} | "
                      f"{on['exact_per_query']:.1f} | {off['exact_per_query']:.1f} | {saved:.0%} "
                      f"| {fmt(pages, 1)} | {on.get('heap_fetches_per_query', 0):.1f} |")
    vac = [r for r in res["runs"] if "vacuum" in r]
    if vac:
        md += ["", "## VACUUM after deleting rows", "",
               "| index | rows deleted | maintenance_work_mem | VACUUM (s) | peak private MB | index MB before / after | "
               "recall@10 at default ef_search after |", "|---|---|---|---|---|---|---|"]
        for r in vac:
            v = r["vacuum"]
            md.append(f"| {r['label']} | {v['deleted']:,} | {v.get('maintenance_work_mem', '')} | {v['vacuum_s']:.1f} | {v['peak_private_mb']} | "
                      f"{v['size_before_bytes'] / 2**20:.1f} / {v['size_after_bytes'] / 2**20:.1f} | "
                      f"{v['recall@10_default']:.3f} |")
    md += ["", "![recall vs QPS](recall_qps.png)", "", "![build time and size](build_size.png)", ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(md))
    return "\n".join(md)


def plot(res, outdir):
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in res["runs"]:
        pts = sorted((p["recall@10"], p["c2"]["qps"]) for p in r["sweep"])
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o",
                linestyle="-" if r["system"] == "vsag" else "--", label=r["label"])
    ax.set_xlabel("recall@10")
    ax.set_ylabel("QPS (pgbench, 2 clients)")
    ax.set_title(f"{res['dataset']['name']}: recall vs throughput")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "recall_qps.png"), dpi=110)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    labels = [r["label"].replace(" (", "\n(") for r in res["runs"]]
    a1.bar(labels, [r["build_s"] for r in res["runs"]], color="tab:blue")
    a1.set_title("build time (s)")
    a2.bar(labels, [r["size_bytes"] / 2**20 for r in res["runs"]], color="tab:orange")
    a2.set_title("index size (MB)")
    for a in (a1, a2):
        a.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "build_size.png"), dpi=110)
    plt.close(fig)
