"""vsag beside pgvector in one database (needs a server with both installed; connection from
PGHOST / PGPORT, pg_dump and pg_restore from VSAG_PG_BIN):
- CREATE EXTENSION vector, then vsag: vsag creates no type and puts its operator classes on
  pgvector's `vector`;
- a vsag index with each operator class on a pgvector column, next to a pgvector HNSW index
  with the same operator class name: EXPLAIN shows the vsag index for pgvector's operators,
  recall@10 against exact results (sequential scan) holds, rows inserted after the build
  are found, vsag_verify finds no problem;
- pg_dump / pg_restore keep the mode and the index;
- DROP EXTENSION in both orders: the dependent side refuses without CASCADE, CASCADE removes
  what depends on it and nothing else;
- with pgvector gone, vsag brings its own `vector` again;
- pgvector in another schema than vsag works the same.
Prints one line per check and `coexist: N passed, N failed`."""
import os
import subprocess
import sys

import numpy as np
import psycopg

DB = "vsag_coexist"
DIM, N, NQ, K = 24, 3000, 40, 10
OPCLASSES = (("vector_l2_ops", "<->"), ("vector_ip_ops", "<#>"), ("vector_cosine_ops", "<=>"), ("vector_l1_ops", "<+>"))
MIN_RECALL = 0.9
PG_BIN = os.environ.get("VSAG_PG_BIN", "")

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def connect(db):
    return psycopg.connect(dbname=db, user="postgres", autocommit=True)


def fresh_db(name):
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")


def fails(conn, sql, expect):
    """True if `sql` raises an error whose message or detail contains `expect`."""
    try:
        conn.execute(sql)
    except psycopg.Error as e:
        text = f"{e.diag.message_primary} {e.diag.message_detail or ''}"
        if expect in text:
            return True
        print(f"     unexpected error: {text}")
        return False
    print(f"     no error from: {sql}")
    return False


def text(v):
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def owner(conn, regtype):
    """Extension that owns a type, or None."""
    row = conn.execute(
        "SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid "
        "WHERE d.classid = 'pg_type'::regclass AND d.objid = %s::regtype "
        "AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'", (regtype,)).fetchone()
    return row[0] if row else None


def extensions(conn):
    return sorted(r[0] for r in conn.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"))


def load(conn, rng):
    centers = rng.normal(size=(20, DIM))
    base = centers[rng.integers(0, 20, N)] + rng.normal(scale=0.4, size=(N, DIM))
    queries = centers[rng.integers(0, 20, NQ)] + rng.normal(scale=0.4, size=(NQ, DIM))
    conn.execute(f"CREATE TABLE docs (id integer PRIMARY KEY, embedding vector({DIM}))")
    with conn.cursor() as cur, cur.copy("COPY docs (id, embedding) FROM STDIN") as cp:
        for i, v in enumerate(base):
            cp.write_row((i, text(v)))
    conn.execute("ANALYZE docs")
    return queries


def top(conn, op, q):
    return [r[0] for r in conn.execute(
        f"SELECT id FROM docs ORDER BY embedding {op} %s::vector LIMIT {K}", (text(q),), prepare=True)]


def index_checks(conn, queries):
    """Each operator class: EXPLAIN uses the vsag index, recall vs a sequential scan, inserts."""
    conn.execute("SET vsag.ef_search = 100")
    for opclass, op in OPCLASSES:
        conn.execute(f"CREATE INDEX docs_hnsw ON docs USING hnsw (embedding {opclass})")
        conn.execute(f"CREATE INDEX docs_vsag ON docs USING vsag (embedding {opclass})")
        check(f"{opclass}: vsag and hnsw indexes with the same opclass name coexist",
              conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'docs' AND indexname IN "
                           "('docs_vsag', 'docs_hnsw')").fetchone()[0] == 2)
        conn.execute("DROP INDEX docs_hnsw")
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            f"EXPLAIN SELECT id FROM docs ORDER BY embedding {op} %s::vector LIMIT {K}", (text(queries[0]),)))
        check(f"{opclass}: EXPLAIN with pgvector's {op} uses the vsag index", "Index Scan using docs_vsag" in plan, plan)
        approx = [top(conn, op, q) for q in queries]
        conn.execute("SET enable_seqscan = on")
        conn.execute("SET enable_indexscan = off")
        conn.execute("SET enable_bitmapscan = off")
        exact = [top(conn, op, q) for q in queries]
        conn.execute("RESET enable_indexscan")
        conn.execute("RESET enable_bitmapscan")
        recall = sum(len(set(a) & set(e)) for a, e in zip(approx, exact)) / (K * NQ)
        check(f"{opclass}: recall@{K} {recall:.3f} >= {MIN_RECALL} against a sequential scan", recall >= MIN_RECALL)
        # Inserted rows go through vsag's insert path reading pgvector's values.
        # Each one is its query's nearest row: a near copy, or under <#> a much longer one.
        new = queries[:5] * (10.0 if op == "<#>" else 1.001)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO docs VALUES (%s, %s)", [(N + 100 + i, text(v)) for i, v in enumerate(new)])
        conn.execute("SET enable_seqscan = off")
        found = sum(N + 100 + i in top(conn, op, v) for i, v in enumerate(new))
        conn.execute("SET enable_seqscan = on")
        check(f"{opclass}: rows inserted after the build are found ({found}/5)", found == 5)
        conn.execute(f"DELETE FROM docs WHERE id >= {N}")
        problems = conn.execute("SELECT count(*) FROM vsag_verify('docs_vsag') WHERE severity = 'error'").fetchone()[0]
        check(f"{opclass}: vsag_verify finds no problem", problems == 0)
        conn.execute("DROP INDEX docs_vsag")


def dump_restore(conn, queries):
    if not PG_BIN:
        check("pg_dump / pg_restore (VSAG_PG_BIN not set)", False)
        return
    conn.execute("CREATE INDEX docs_vsag ON docs USING vsag (embedding vector_cosine_ops)")
    dump = f"/tmp/{DB}-{os.getpid()}.dump"
    host, port = os.environ.get("PGHOST", ""), os.environ.get("PGPORT", "5432")
    subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-h", host, "-p", port, "-U", "postgres", "-Fc", "-f", dump, DB],
                   check=True)
    fresh_db(DB + "_restored")
    r = subprocess.run([os.path.join(PG_BIN, "pg_restore"), "-h", host, "-p", port, "-U", "postgres",
                        "--exit-on-error", "-d", DB + "_restored", dump], capture_output=True, text=True)
    os.unlink(dump)
    check("pg_restore of a database with pgvector, vsag and a vsag index succeeds", r.returncode == 0, r.stderr)
    with connect(DB + "_restored") as rc:
        check("restored: type vector still belongs to pgvector", owner(rc, "vector") == "vector")
        rc.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in rc.execute(
            "EXPLAIN SELECT id FROM docs ORDER BY embedding <=> %s::vector LIMIT 10", (text(queries[0]),)))
        check("restored: the vsag index is used", "Index Scan using docs_vsag" in plan, plan)
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE {DB}_restored")


def other_schema(rng):
    """pgvector in its own schema (as hosted services install it), vsag in public."""
    fresh_db(DB + "_schema")
    with connect(DB + "_schema") as c:
        c.execute("CREATE SCHEMA extensions")
        c.execute("CREATE EXTENSION vector SCHEMA extensions")
        c.execute("CREATE EXTENSION vsag")
        check("pgvector in schema extensions: vsag's classes are on extensions.vector", c.execute(
            "SELECT count(*) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod "
            "WHERE a.amname = 'vsag' AND c.opcintype = 'extensions.vector'::regtype").fetchone()[0] == len(OPCLASSES))
        c.execute("SET search_path = public, extensions")
        load(c, rng)
        c.execute("CREATE INDEX docs_vsag ON docs USING vsag (embedding vector_l2_ops)")
        c.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in c.execute(
            f"EXPLAIN SELECT id FROM docs ORDER BY embedding <-> %s::vector LIMIT {K}", (text(np.ones(DIM)),)))
        check("pgvector in schema extensions: the vsag index is used", "Index Scan using docs_vsag" in plan, plan)
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE {DB}_schema")


def main():
    rng = np.random.default_rng(11)
    fresh_db(DB)
    with connect(DB) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE EXTENSION vsag")
        check("CREATE EXTENSION vsag in a pgvector database", extensions(conn) == ["vector", "vsag"])
        check("type vector belongs to pgvector, vsag owns no type", owner(conn, "vector") == "vector" and not
              conn.execute("SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid "
                           "WHERE e.extname = 'vsag' AND d.classid = 'pg_type'::regclass").fetchone()[0])
        n_ops = conn.execute("SELECT count(*) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod "
                             "WHERE a.amname = 'vsag' AND c.opcintype = 'vector'::regtype").fetchone()[0]
        check("vsag's operator classes are on pgvector's type", n_ops == len(OPCLASSES), f"found {n_ops}")
        queries = load(conn, rng)
        index_checks(conn, queries)
        dump_restore(conn, queries)

        # Order 1: vsag first. Its index depends on its operator class.
        check("DROP EXTENSION vsag refuses while a vsag index exists",
              fails(conn, "DROP EXTENSION vsag", "depends on operator class"))
        check("DROP EXTENSION vector refuses while vsag uses its type",
              fails(conn, "DROP EXTENSION vector", "vsag"))
        conn.execute("CREATE INDEX docs_hnsw ON docs USING hnsw (embedding vector_l2_ops)")
        conn.execute("DROP EXTENSION vsag CASCADE")
        left = [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'docs' ORDER BY 1")]
        check("DROP EXTENSION vsag CASCADE drops the vsag index only", left == ["docs_hnsw", "docs_pkey"], str(left))
        check("... and leaves pgvector and the data", extensions(conn) == ["vector"] and
              conn.execute("SELECT count(*) FROM docs").fetchone()[0] == N)
        conn.execute("DROP TABLE docs")
        conn.execute("DROP EXTENSION vector")
        check("then DROP EXTENSION vector", extensions(conn) == [])

        # Order 2: pgvector first, with vsag still there.
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE EXTENSION vsag")
        queries = load(conn, rng)
        conn.execute("CREATE INDEX docs_vsag ON docs USING vsag (embedding vector_l2_ops)")
        check("DROP EXTENSION vector refuses (vsag and the table depend on it)",
              fails(conn, "DROP EXTENSION vector", "depends on"))
        check("... and changed nothing", extensions(conn) == ["vector", "vsag"])
        conn.execute("DROP EXTENSION vector CASCADE")
        check("DROP EXTENSION vector CASCADE removes vsag too", extensions(conn) == [], str(extensions(conn)))
        gone = conn.execute("SELECT count(*) FROM pg_am WHERE amname = 'vsag'").fetchone()[0] == 0
        check("... including the vsag access method", gone)

        # Without pgvector, vsag brings its own type again.
        conn.execute("CREATE EXTENSION vsag")
        check("standalone CREATE EXTENSION vsag owns type vector", owner(conn, "vector") == "vsag")
        conn.execute(f"CREATE TABLE solo (id integer, embedding vector({DIM}))")
        conn.execute("INSERT INTO solo SELECT i, %s::vector FROM generate_series(1, 50) i", (text(queries[0]),))
        conn.execute("CREATE INDEX ON solo USING vsag (embedding vector_l2_ops)")
        check("standalone vsag index works", conn.execute(
            "SELECT count(*) FROM (SELECT id FROM solo ORDER BY embedding <-> %s::vector LIMIT 5) s",
            (text(queries[0]),)).fetchone()[0] == 5)
        conn.execute("DROP EXTENSION vsag CASCADE")
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE {DB}")
    other_schema(rng)
    print(f"coexist: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
