"""python -m vsagbench.ablation RESULTS_JSON [--recall 0.95,0.99] — issue 9's "what bought how
much": every configuration of one run at the same recall@10 (QPS interpolated on its curve, 2
clients), against pgvector's best in that run, with exact distances and index pages per query
at the sweep point nearest that recall (from the re-rank measurement)."""
import argparse
import json

from .report import qps_at


def nearest(sweep, target):
    pts = [p for p in sweep if p["recall@10"] >= target] or sweep
    return min(pts, key=lambda p: p["recall@10"])


def main():
    ap = argparse.ArgumentParser(prog="python -m vsagbench.ablation")
    ap.add_argument("results")
    ap.add_argument("--recall", default="0.95,0.99")
    args = ap.parse_args()
    res = json.load(open(args.results))
    runs = res["runs"]
    for target in (float(x) for x in args.recall.split(",")):
        pg = max((q for r in runs if r["system"] == "pgvector" if (q := qps_at(r["sweep"], target, 2))), default=None)
        print(f"\nrecall@10 {target}: pgvector best {pg:,.0f} QPS" if pg else f"\nrecall@10 {target}: pgvector does not reach it")
        print("| configuration | QPS | vs pgvector | exact distances / query | index pages / query | size MB |")
        print("|---|---|---|---|---|---|")
        for r in runs:
            if r["system"] != "vsag":
                continue
            q = qps_at(r["sweep"], target, 2)
            p = nearest(r["sweep"], target)
            rr = p.get("rerank", {}).get("on", {})
            ratio = f"{q / pg:.2f}x" if q and pg else "–"
            print(f"| {r['label']} | {q:,.0f} | {ratio} | {rr.get('exact_per_query', float('nan')):.1f} (ef {p['ef']}) "
                  f"| {rr.get('index_pages_per_query', float('nan')):.0f} | {r['size_bytes'] / 2**20:.1f} |"
                  if q else f"| {r['label']} | – | – | – | – | {r['size_bytes'] / 2**20:.1f} |")


if __name__ == "__main__":
    main()
