"""vsag_tune against hand-set ef_search (issue 13, "Done when"): on held-out queries (not rows
of the table, never seen by vsag_tune) find the cheapest hand-set vsag.ef_search reaching the
target recall@10 (QPS from pgbench -M prepared -c 2 -j 2), run vsag_tune, then measure recall
and QPS of plain queries at default settings, and compare both in interleaved rounds of the
same run. Used by bench/vsagbench/tune.py (minilm-100k) and tests/tune/recall.py (CI, generated
data); needs only numpy and psycopg (no server package), so the CI test can import it."""
import os
import re
import subprocess
import tempfile
import time

OPS = {"cosine": ("<=>", "vector_cosine_ops"), "l2": ("<->", "vector_l2_ops"), "ip": ("<#>", "vector_ip_ops")}
K = 10


def query_sql(metric, table="docs", queries="queries"):
    return (f"SELECT id FROM {table} ORDER BY embedding {OPS[metric][0]} "
            f"(SELECT embedding FROM {queries} WHERE id = %s) LIMIT {K}")


def recall(conn, metric, gt, gucs):
    """recall@10 of the held-out queries 0..len(gt)-1 with `gucs` SET (RESET afterwards)."""
    hits = 0
    with conn.cursor() as cur:
        for g, v in gucs.items():
            cur.execute(f"SET {g} = {v}")
        sql = query_sql(metric)
        for qi in range(len(gt)):
            cur.execute(sql, (qi,), prepare=True)
            hits += len({r[0] for r in cur.fetchall()} & set(gt[qi, :K].tolist()))
        for g in gucs:
            cur.execute(f"RESET {g}")
    return hits / (K * len(gt))


def qps(pgbench, env, db, metric, nq, gucs, seconds, clients=2):
    """pgbench -M prepared -c clients -j clients over random held-out query ids."""
    env = dict(env, PGOPTIONS=" ".join(f"-c {k}={v}" for k, v in gucs.items()))
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        script = os.path.join(tmp, "q.sql")
        with open(script, "w") as f:
            f.write(f"\\set qid random(0, {nq - 1})\n")
            f.write(query_sql(metric).replace("%s", ":qid") + ";\n")
        cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
               "-f", script, db]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr}")
        return float(re.search(r"tps = ([0-9.]+)", out.stdout).group(1))


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def compare(conn, pgbench, env, db, metric, gt, efs, target=0.95, sample=200, seconds=5, rounds=3,
            candidates=4, log=print):
    """The whole comparison on index `docs_ann` (built by the caller). Returns a dict."""
    nq = len(gt)
    conn.execute("SET enable_seqscan = off")  # the plain queries must use the index
    env = dict(env)
    # 1. hand-set sweep: recall of every ef, QPS of the first `candidates` that reach the target
    sweep = []
    for ef in efs:
        r = recall(conn, metric, gt, {"vsag.ef_search": ef})
        sweep.append({"ef": ef, "recall@10": r})
        log(f"  hand-set ef_search={ef}: recall@10={r:.4f}")
    passing = [p for p in sweep if p["recall@10"] >= target][:candidates]
    if not passing:
        raise RuntimeError(f"no hand-set ef_search in {efs} reaches recall {target}")
    for p in passing:
        p["qps"] = qps(pgbench, env, db, metric, nq, {"vsag.ef_search": p["ef"], "enable_seqscan": "off"}, seconds)
        log(f"  hand-set ef_search={p['ef']}: {p['qps']:.0f} QPS")
    best = max(passing, key=lambda p: p["qps"])
    # 2. vsag_tune on the table's own rows (the held-out queries are never shown to it)
    conn.add_notice_handler(lambda n: log(f"    {n.message_primary}"))
    t0 = time.perf_counter()
    tried = conn.execute("SELECT ef_search, search_m, prefetch_depth, early_stop, recall, recall_low, mean_ms, chosen "
                         "FROM vsag_tune('docs_ann', %s, %s, %s)", (target, K, sample)).fetchall()
    tune_s = time.perf_counter() - t0
    chosen = [t for t in tried if t[7]]
    stored = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'docs_ann'").fetchone()[0]
    log(f"  vsag_tune: {len(tried)} settings tried in {tune_s:.1f} s; stored {stored}")
    # 3. plain queries at default settings vs the best hand-set ef_search, interleaved rounds
    tuned_recall = recall(conn, metric, gt, {})
    tuned_q, hand_q = [], []
    for _ in range(rounds):
        tuned_q.append(qps(pgbench, env, db, metric, nq, {"enable_seqscan": "off"}, seconds))
        hand_q.append(qps(pgbench, env, db, metric, nq, {"vsag.ef_search": best["ef"], "enable_seqscan": "off"},
                          seconds))
    conn.execute("RESET enable_seqscan")
    res = {
        "target": target, "sample": sample, "heldout_queries": nq, "sweep": sweep,
        "best_hand_set": {"ef": best["ef"], "recall@10": best["recall@10"], "qps_rounds": hand_q,
                          "qps": median(hand_q)},
        "tuned": {"stored": stored, "recall@10": tuned_recall, "qps_rounds": tuned_q, "qps": median(tuned_q),
                  "tune_s": tune_s,
                  "chosen": dict(zip(("ef_search", "search_m", "prefetch_depth", "early_stop", "recall", "recall_low",
                                      "mean_ms"), chosen[0][:7])) if chosen else None,
                  "tried": len(tried)},
    }
    res["qps_ratio"] = res["tuned"]["qps"] / res["best_hand_set"]["qps"]
    log(f"  tuned (default GUCs): recall@10={tuned_recall:.4f}, {res['tuned']['qps']:.0f} QPS; best hand-set "
        f"ef_search={best['ef']}: recall@10={best['recall@10']:.4f}, {res['best_hand_set']['qps']:.0f} QPS; "
        f"ratio {res['qps_ratio']:.2f}")
    return res
