"""QLP against a fixed beam from one `bench/run` results.json: for every point of an
adaptive-termination run (`vsag.early_stop=P`), the fixed-ef_search run's QPS interpolated at
the same recall@10 (linear between neighbouring ef_search points), and the ratio.

python -m vsagbench.qlp results/minilm-100k-qlp/results.json  (appends a table to report.md)
"""
import json
import os
import sys


def interp(curve, recall, key):
    """QPS of `curve` (points sorted by recall) at `recall`; None outside its range."""
    for a, b in zip(curve, curve[1:]):
        if a["recall@10"] <= recall <= b["recall@10"] and b["recall@10"] > a["recall@10"]:
            t = (recall - a["recall@10"]) / (b["recall@10"] - a["recall@10"])
            return a[key]["qps"] + t * (b[key]["qps"] - a[key]["qps"])
    return None


def main(path):
    d = json.load(open(path))
    fixed = next(r for r in d["runs"] if not r["options"])
    curve = sorted(fixed["sweep"], key=lambda p: p["recall@10"])
    lines = ["", "## Adaptive termination (QLP) against the fixed beam", "",
             "QPS of the fixed-`ef_search` run interpolated at each QLP point's recall@10.", "",
             "| run | ef_search | recall@10 | QPS 1c | fixed 1c | ratio 1c | QPS 2c | fixed 2c | ratio 2c |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in d["runs"]:
        if run is fixed:
            continue
        for p in run["sweep"]:
            row = [run["label"], str(p["ef"]), f"{p['recall@10']:.3f}"]
            for key in ("c1", "c2"):
                f = interp(curve, p["recall@10"], key)
                q = p[key]["qps"]
                row += [f"{q:,.0f}", "–" if f is None else f"{f:,.0f}", "–" if f is None else f"{q / f:.2f}x"]
            lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(os.path.dirname(path), "report.md"), "a") as out:
        out.write(text)


if __name__ == "__main__":
    main(sys.argv[1])
