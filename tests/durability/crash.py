"""Crash recovery: concurrent inserts into an indexed table, SIGKILL of the postmaster and
every backend mid-load, restart; then every committed row must be in the table and found
through the index, no in-flight row may appear, and vsag_verify must be clean. Repeated."""
import random
import sys
import threading
import time

import psycopg

from cluster import Cluster, check
from common import check_index, rand_vec, setup_table

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
WRITERS = 4
LOAD_SECONDS = 4


def rnd_seed():
    return int(time.time() * 1000) % 1_000_000


def writer(c, wid, committed, inflight, stop):
    rng = random.Random(1000 * rnd_seed() + wid)
    next_id = 1_000_000 * (wid + 1) + int(time.time() * 1000) % 100_000 * 10
    try:
        conn = c.connect(autocommit=False)
        while not stop.is_set():
            next_id += 1
            conn.execute("INSERT INTO t VALUES (%s, %s)", (next_id, rand_vec(rng)))
            conn.commit()
            committed.append(next_id)
    except psycopg.Error:
        pass  # the crash


def inflight_writer(c, inflight):
    """Inserts rows (index entries included) and never commits: the crash must erase them."""
    rng = random.Random(99)
    try:
        conn = c.connect(autocommit=False)
        for i in range(50):
            rid = 900_000_000 + int(time.time()) % 1000 * 1000 + i
            conn.execute("INSERT INTO t VALUES (%s, %s)", (rid, rand_vec(rng)))
            inflight.append(rid)
        conn.execute("SELECT pg_sleep(600)")
    except psycopg.Error:
        pass


def main():
    c = Cluster("/tmp/vsag-crash", 5491).init(settings={"shared_buffers": "128MB", "max_connections": 30}).start()
    with c.connect() as conn:
        setup_table(conn, 2000)
    total_committed = 0
    for rnd in range(1, ROUNDS + 1):
        committed, inflight, stop = [], [], threading.Event()
        threads = [threading.Thread(target=writer, args=(c, w, committed, inflight, stop)) for w in range(WRITERS)]
        threads.append(threading.Thread(target=inflight_writer, args=(c, inflight)))
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        c.kill9()
        stop.set()
        for t in threads:
            t.join()
        c.start()
        with c.connect() as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM t").fetchall()}
            missing = [i for i in committed if i not in ids]
            present = [i for i in inflight if i in ids]
            check(not missing, f"round {rnd}: all {len(committed)} rows committed before the crash survived")
            check(not present, f"round {rnd}: none of {len(inflight)} in-flight rows survived")
            check_index(conn, f"round {rnd}", check)
        total_committed += len(committed)
    print(f"crash: {ROUNDS} crashes survived, {total_committed} committed rows checked")
    c.stop()


if __name__ == "__main__":
    main()
