-- A build whose float vectors do not fit maintenance_work_mem writes them to a temporary
-- file and links the graph over SQ8 codes (NOTICE); when even those do not fit, it builds
-- the graph in overlapping partitions (NOTICE). One build thread (no parallel workers)
-- keeps the memory estimate, so the NOTICEs' numbers, machine-independent.
SET max_parallel_maintenance_workers = 0;
SELECT setseed(0.25);
-- 32 clusters in 128 dimensions, each a 4-d sheet (like embeddings: dense regions of low
-- intrinsic dimension).
CREATE TABLE bc AS
SELECT i AS id,
       (SELECT array_agg(((i % 32) * 0.37 + j * 0.11) - floor((i % 32) * 0.37 + j * 0.11)
                         + 0.3 * (r.a * cos(j) + r.b * sin(0.7 * j) + r.c * cos(1.3 * j) + r.d * sin(2.1 * j)))
        FROM generate_series(1, 128) j)::vector(128) AS v
FROM generate_series(1, 15000) i,
     LATERAL (SELECT random() AS a, random() AS b, random() AS c, random() AS d WHERE i > 0) r;
SET maintenance_work_mem = '10MB';
CREATE INDEX bc_codes ON bc USING vsag (v vector_l2_ops);
-- An index that stores vectors reads the exact ones back from the table when writing.
CREATE INDEX bc_full ON bc USING vsag (v vector_l2_ops) WITH (storage = full);
RESET maintenance_work_mem;
SELECT message FROM vsag_verify('bc_codes') WHERE severity = 'info';
SELECT message FROM vsag_verify('bc_full') WHERE severity = 'info';
DROP INDEX bc_full;
-- Partitions: every row indexed once (duplicates share a node), every node reachable,
-- vectors stored exactly (storage = full reads them from the temporary file).
INSERT INTO bc SELECT 20000 + id, v FROM bc WHERE id <= 500;
SET maintenance_work_mem = '4MB';
CREATE INDEX bc_parts ON bc USING vsag (v vector_l2_ops);
CREATE INDEX bc_parts_full ON bc USING vsag (v vector_l2_ops) WITH (storage = full);
RESET maintenance_work_mem;
SELECT message FROM vsag_verify('bc_parts') WHERE severity <> 'debug';
SELECT message FROM vsag_verify('bc_parts_full') WHERE severity <> 'debug';
SELECT array_agg(id ORDER BY id) AS copies FROM (SELECT id FROM bc ORDER BY v <-> (SELECT v FROM bc WHERE id = 3) LIMIT 2) s;
DROP INDEX bc_parts_full;
-- The index answers like an exact scan: recall@10 over 20 queries (ef_search 100).
SET vsag.ef_search = 100;
CREATE TEMP TABLE q AS SELECT id, v FROM bc WHERE id % 750 = 1;
CREATE TEMP TABLE got AS
SELECT q.id AS qid, n.id FROM q, LATERAL (SELECT id FROM bc ORDER BY bc.v <-> q.v LIMIT 10) n;
SET enable_indexscan = off;
CREATE TEMP TABLE truth AS
SELECT q.id AS qid, n.id FROM q, LATERAL (SELECT id FROM bc ORDER BY bc.v <-> q.v LIMIT 10) n;
RESET enable_indexscan;
SELECT count(*) >= 190 AS recall_at_least_095 FROM got JOIN truth USING (qid, id);
-- The same from the partitioned index.
DROP INDEX bc_codes;
CREATE TEMP TABLE got_parts AS
SELECT q.id AS qid, n.id FROM q, LATERAL (SELECT id FROM bc ORDER BY bc.v <-> q.v LIMIT 10) n;
SELECT count(*) >= 190 AS parts_recall_at_least_095 FROM got_parts JOIN truth USING (qid, id);
RESET vsag.ef_search;
DROP TABLE bc;
RESET max_parallel_maintenance_workers;
