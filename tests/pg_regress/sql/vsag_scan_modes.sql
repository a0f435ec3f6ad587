-- Scan semantics as pgvector defines them: vsag.iterative_scan (off / relaxed_order /
-- strict_order), vsag.max_scan_tuples, vsag.scan_mem_multiplier; per-index ef_search.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;
SELECT setseed(0.25);
CREATE TABLE sm (id int PRIMARY KEY, v vector(16));
INSERT INTO sm SELECT i, array_agg(random() - 0.5)::vector(16) FROM generate_series(1, 3000) i, generate_series(1, 16) d GROUP BY i;
CREATE INDEX sm_idx ON sm USING vsag (v vector_l2_ops);
SET enable_seqscan = off;
SET vsag.ef_search = 20;

-- off: the first beam only, at most ef_search rows
SET vsag.iterative_scan = off;
SELECT count(*) FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 100) s;
-- relaxed_order (the default): continues to the LIMIT
RESET vsag.iterative_scan;
SHOW vsag.iterative_scan;
SELECT count(*) FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 1000) s;
-- strict_order: distances never decrease
SET vsag.iterative_scan = strict_order;
SELECT bool_and(d >= prev) AS ordered, count(*) > 500 AS continued FROM (
    SELECT d, lag(d, 1, 0) OVER (ORDER BY n) AS prev FROM (
        SELECT row_number() OVER () AS n, v <-> (SELECT v FROM sm WHERE id = 1) AS d
        FROM (SELECT v FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 1000) q) r) t;
RESET vsag.iterative_scan;
-- max_scan_tuples caps a continuing scan
SET vsag.max_scan_tuples = 50;
SELECT count(*) FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 1000) s;
RESET vsag.max_scan_tuples;
-- scan_mem_multiplier x work_mem caps a continuing scan's memory; the first batch always comes
SET work_mem = '64kB';
SELECT count(*) < 3000 AS stopped_early, count(*) >= 5 AS first_batch FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 3000) s;
SET vsag.scan_mem_multiplier = 1000;
SELECT count(*) AS all_rows FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 3000) s;
RESET vsag.scan_mem_multiplier;
RESET work_mem;

-- per-index ef_search: used while the session's vsag.ef_search is at its default
RESET vsag.ef_search;
SET vsag.iterative_scan = off;
ALTER INDEX sm_idx SET (ef_search = 7);
SELECT count(*) AS index_default FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 100) s;
SET vsag.ef_search = 12;
SELECT count(*) AS session_wins FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 100) s;
RESET vsag.ef_search;
ALTER INDEX sm_idx RESET (ef_search);
SELECT count(*) AS guc_default FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 100) s;
CREATE INDEX sm_idx2 ON sm USING vsag (v vector_l2_ops) WITH (ef_search = 9);
DROP INDEX sm_idx;
SELECT count(*) AS from_create_index FROM (SELECT id FROM sm ORDER BY v <-> (SELECT v FROM sm WHERE id = 1) LIMIT 100) s;
RESET vsag.iterative_scan;
RESET enable_seqscan;

-- bad values
SET vsag.iterative_scan = sideways;
SET vsag.scan_mem_multiplier = -1;
SET vsag.ef_search = 0;
SET vsag.ef_search = 10001;
ALTER INDEX sm_idx2 SET (ef_search = -1);
ALTER INDEX sm_idx2 SET (ef_search = 20000);
SELECT 1 AS alive;
DROP TABLE sm;
