"""8 clients inserting and searching at once (pgbench custom scripts), a fixed number of
transactions each: zero failed transactions, no deadlock, every inserted row reachable,
vsag_verify clean. The count is fixed, not the time, so the index grows by the same amount on
every machine: the self-search check's miss rate grows with the rows inserted into the
1,000-row build (32-d uniform data, m = 16: 0.49% after 19k inserts, 1.03% after 30k)."""
import os
import re
import subprocess
import sys
import tempfile

from cluster import PG_BIN, Cluster, check
from common import DIM, check_index, setup_table

TRANSACTIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 4000  # per client: ~16k inserts in all


def main():
    c = Cluster("/tmp/vsag-concurrency", 5494).init(settings={"max_connections": 30}).start()
    with c.connect() as conn:
        setup_table(conn, 1000)
        conn.execute("CREATE SEQUENCE ids START 100000")
    vec = f"(SELECT array_agg(random() * 2 - 1)::vector({DIM}) FROM generate_series(1, {DIM}))"
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        ins, srch = os.path.join(tmp, "insert.sql"), os.path.join(tmp, "search.sql")
        with open(ins, "w") as f:
            f.write(f"INSERT INTO t VALUES (nextval('ids'), {vec});\n")
        with open(srch, "w") as f:
            f.write(f"SELECT id FROM t ORDER BY v <-> {vec} LIMIT 10;\n")
        env = dict(os.environ, PGHOST=c.root, PGPORT=str(c.port), PGUSER="postgres")
        out = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-n", "-c", "8", "-j", "2", "-t", str(TRANSACTIONS),
                              "-f", ins + "@1", "-f", srch + "@1", "postgres"], env=env, capture_output=True, text=True)
    print(out.stdout[-600:])
    check(out.returncode == 0, f"pgbench exited 0 ({out.stderr.strip()[:300]})")
    done = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    check(failed is None or int(failed.group(1)) == 0, f"no failed transactions out of {done}")
    check("deadlock" not in c.log_text(), "no deadlock in the server log")
    check("ERROR" not in c.log_text(), "no ERROR in the server log")
    with c.connect() as conn:
        check_index(conn, "after the run", check)
    print(f"concurrency: {done} transactions by 8 clients")
    c.stop()


if __name__ == "__main__":
    main()
