-- The vsag index access method: exact agreement with brute force on small tables for every
-- operator class, inserts after build, empty/tiny tables, NULLs, WHERE filters, bad options.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

SELECT setseed(0.5);
CREATE TABLE vi (id int PRIMARY KEY, cat int, v vector(8));
INSERT INTO vi SELECT i, i % 5, array_agg(random() - 0.5)::vector(8)
FROM generate_series(1, 600) i, generate_series(1, 8) d GROUP BY i;
INSERT INTO vi VALUES (601, 0, NULL), (602, 1, NULL);
CREATE TABLE vq (qid int, q vector(8));
INSERT INTO vq SELECT i, array_agg(random() - 0.5)::vector(8)
FROM generate_series(1, 25) i, generate_series(1, 8) d GROUP BY i;

-- Compare the index's answer with a sequential scan for every query. `op` is an operator name.
CREATE FUNCTION knn_mismatches(op text, k int, filter text DEFAULT 'true') RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r record; got int[]; want int[]; bad int := 0; plan text; line text;
BEGIN
    FOR r IN SELECT qid, q FROM vq ORDER BY qid LOOP
        SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = on;
        plan := '';
        FOR line IN EXECUTE format('EXPLAIN SELECT id FROM vi WHERE %s ORDER BY v %s %L LIMIT %s', filter, op, r.q, k) LOOP
            plan := plan || line;
        END LOOP;
        IF plan NOT LIKE '%Index Scan%' THEN RAISE EXCEPTION 'index not used: %', plan; END IF;
        EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM vi WHERE %s ORDER BY v %s %L LIMIT %s) s', filter, op, r.q, k) INTO got;
        SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off;
        EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM vi WHERE %s ORDER BY v %s %L, id LIMIT %s) s', filter, op, r.q, k) INTO want;
        IF got IS DISTINCT FROM want THEN bad := bad + 1; END IF;
    END LOOP;
    RETURN bad;
END $$;

-- With ef_search covering the table the search is exhaustive: results must equal brute force.
SET vsag.ef_search = 600;
CREATE INDEX vi_l2 ON vi USING vsag (v vector_l2_ops);
SELECT knn_mismatches('<->', 10) AS l2_k10, knn_mismatches('<->', 100) AS l2_k100;
DROP INDEX vi_l2;
CREATE INDEX vi_ip ON vi USING vsag (v vector_ip_ops) WITH (m = 16, ef_construction = 64);
SELECT knn_mismatches('<#>', 10) AS ip_k10, knn_mismatches('<#>', 100) AS ip_k100;
DROP INDEX vi_ip;
CREATE INDEX vi_cos ON vi USING vsag (v vector_cosine_ops) WITH (redundancy = 1);
SELECT knn_mismatches('<=>', 10) AS cos_k10, knn_mismatches('<=>', 100) AS cos_k100;

-- At the default ef_search the answer is still near-exact on a small table.
RESET vsag.ef_search;
SELECT knn_mismatches('<=>', 10) <= 2 AS default_ef_close;

-- LIMIT far above ef_search: the scan continues past the first beam and returns every row.
SET vsag.ef_search = 10;
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM vi ORDER BY v <=> '[1,0,0,0,0,0,0,0]' LIMIT 1000) s;
-- ... unless capped by vsag.max_scan_tuples
SET vsag.max_scan_tuples = 50;
SELECT count(*) FROM (SELECT id FROM vi ORDER BY v <=> '[1,0,0,0,0,0,0,0]' LIMIT 1000) s;
RESET vsag.max_scan_tuples;
RESET vsag.ef_search;
RESET enable_seqscan;

-- WHERE filters on other columns: complete and correct results (the scan keeps going).
SET vsag.ef_search = 600;
SELECT knn_mismatches('<=>', 10, 'cat = 3') AS filtered_mismatches;
SET vsag.ef_search = 10;
SET enable_seqscan = off;
SELECT count(*) AS filtered_rows FROM (SELECT id FROM vi WHERE cat = 3 ORDER BY v <=> '[1,0,0,0,0,0,0,0]' LIMIT 50) s;
RESET enable_seqscan;
RESET vsag.ef_search;

-- Inserts after build are found (exact vector query finds itself first).
INSERT INTO vi SELECT 1000 + i, 9, array_agg(random() - 0.5)::vector(8)
FROM generate_series(1, 200) i, generate_series(1, 8) d GROUP BY i;
INSERT INTO vi VALUES (2000, 9, NULL);
SET enable_seqscan = off;
SELECT count(*) AS self_found FROM vi a
WHERE a.id > 1000 AND a.v IS NOT NULL
  AND (SELECT b.id FROM vi b ORDER BY b.v <=> a.v LIMIT 1) = a.id;
SET vsag.ef_search = 1000;
SELECT knn_mismatches('<=>', 10) AS after_insert_mismatches;
RESET vsag.ef_search;
RESET enable_seqscan;

-- NULL query vector: every indexed row comes back (in index order), NULL vectors never.
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM vi ORDER BY v <=> (SELECT NULL::vector) LIMIT 5000) s;
RESET enable_seqscan;

-- Planner: used for ORDER BY ... LIMIT on a table where it pays off, not for other queries
-- or other operators.
CREATE TABLE vp (id int, v vector(8));
INSERT INTO vp SELECT i, array_agg(random() - 0.5)::vector(8)
FROM generate_series(1, 20000) i, generate_series(1, 8) d GROUP BY i;
CREATE INDEX ON vp USING vsag (v vector_cosine_ops) WITH (m = 8, ef_construction = 16);
ANALYZE vp;
EXPLAIN (COSTS OFF) SELECT id FROM vp ORDER BY v <=> '[1,0,0,0,0,0,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM vp ORDER BY v <-> '[1,0,0,0,0,0,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM vp WHERE v = '[1,0,0,0,0,0,0,0]';
EXPLAIN (COSTS OFF) SELECT id FROM vp ORDER BY v <=> '[1,0,0,0,0,0,0,0]' DESC LIMIT 5;
-- on a tiny table a sort is cheaper than the index, and the planner says so
EXPLAIN (COSTS OFF) SELECT id FROM vi ORDER BY v <=> '[1,0,0,0,0,0,0,0]' LIMIT 5;

-- Empty and tiny tables.
CREATE TABLE ve (id int, v vector(3));
CREATE INDEX ve_idx ON ve USING vsag (v vector_l2_ops);
SET enable_seqscan = off;
SELECT id FROM ve ORDER BY v <-> '[1,2,3]' LIMIT 5;
INSERT INTO ve VALUES (1, '[1,2,3]');
SELECT id FROM ve ORDER BY v <-> '[1,2,3]' LIMIT 5;
INSERT INTO ve VALUES (2, '[1,2,4]'), (3, NULL), (4, '[0,0,0]');
SELECT id FROM ve ORDER BY v <-> '[1,2,3]' LIMIT 5;
CREATE TABLE vt (id int, v vector(3));
INSERT INTO vt VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[3,3,3]'), (4, NULL), (5, '[0,0,0]');
CREATE INDEX ON vt USING vsag (v vector_cosine_ops);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (m = 4, ef_construction = 8);
SELECT id FROM vt ORDER BY v <-> '[2.1,2,2]' LIMIT 10;
-- the zero vector has no cosine direction: not in the cosine index (pgvector does the same)
SELECT id FROM vt ORDER BY v <=> '[1,2,3]' LIMIT 10;
RESET enable_seqscan;
-- duplicates: rows with identical vectors share nodes (10 rows per node), before and after
-- the build, so every copy stays reachable
CREATE TABLE vd (id int, v vector(4));
INSERT INTO vd SELECT i, ARRAY[random(), random(), random(), random()] FROM generate_series(1, 1000) i;
INSERT INTO vd SELECT 5000 + i, '[0.5,0.5,0.5,0.5]' FROM generate_series(1, 150) i;
CREATE INDEX vd_idx ON vd USING vsag (v vector_l2_ops);
INSERT INTO vd SELECT 6000 + i, '[0.5,0.5,0.5,0.5]' FROM generate_series(1, 150) i;
INSERT INTO vd SELECT 7000 + i, '[0.25,0.5,0.5,0.5]' FROM generate_series(1, 100) i;
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE v = '[0.5,0.5,0.5,0.5]') AS copies_found, count(*) AS rows
FROM (SELECT v FROM vd ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 300) s;
SELECT count(*) AS other_copies_found FROM (SELECT id FROM vd ORDER BY v <-> '[0.25,0.5,0.5,0.5]' LIMIT 100) s WHERE id > 7000;
SELECT severity, message FROM vsag_verify('vd_idx');
RESET enable_seqscan;

-- Bad options, dimensions and queries error clearly.
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (m = 1);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (m = 101);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (ef_construction = 5000);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (m = 32, ef_construction = 16);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (alpha = 0.5);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (redundancy = 1.5);
CREATE INDEX ON vt USING vsag (v vector_l2_ops) WITH (nonsense = 1);
CREATE INDEX ON vt USING vsag (v);
CREATE TABLE vnodim (v vector);
CREATE INDEX ON vnodim USING vsag (v vector_l2_ops);
CREATE TABLE vbig (v vector(3000));
CREATE INDEX ON vbig USING vsag (v vector_l2_ops) WITH (storage = full);
-- codes-only storage (the default) fits high dimensions
CREATE INDEX vbig_codes ON vbig USING vsag (v vector_l2_ops);
SET vsag.ef_search = 0;
SET vsag.ef_search = 10001;
SET vsag.max_scan_tuples = 0;
SET enable_seqscan = off;
SELECT id FROM vt ORDER BY v <-> '[1,2]' LIMIT 1;
RESET enable_seqscan;
SELECT 1 AS alive;

-- scans are counted in pg_stat_user_indexes.idx_scan
CREATE INDEX vi_count ON vi USING vsag (v vector_l2_ops);
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS scans_before FROM pg_stat_user_indexes WHERE indexrelname = 'vi_count' \gset
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM vi ORDER BY v <-> (SELECT q FROM vq WHERE qid = 1) LIMIT 3) s;
SELECT count(*) FROM (SELECT id FROM vi ORDER BY v <-> (SELECT q FROM vq WHERE qid = 2) LIMIT 3) s;
RESET enable_seqscan;
SELECT pg_stat_force_next_flush();
SELECT idx_scan - :scans_before AS scans_counted FROM pg_stat_user_indexes WHERE indexrelname = 'vi_count';
DROP INDEX vi_count;

-- wide embeddings with the default options: 3,072-d (OpenAI large) and 4,000-d, found
-- exactly by their own vectors; past the page limit the error names the maximum dimension
CREATE TABLE vwide (id int, v vector(3072));
INSERT INTO vwide SELECT i, array_agg(sin(i * d))::vector(3072) FROM generate_series(1, 60) i, generate_series(1, 3072) d GROUP BY i;
CREATE INDEX vwide_idx ON vwide USING vsag (v vector_cosine_ops);
SET enable_seqscan = off;
SELECT count(*) AS self_found FROM vwide w WHERE (SELECT id FROM vwide ORDER BY v <=> w.v LIMIT 1) = w.id;
RESET enable_seqscan;
CREATE TABLE vwide4 (id int, v vector(4000));
INSERT INTO vwide4 SELECT i, array_agg(cos(i * d))::vector(4000) FROM generate_series(1, 30) i, generate_series(1, 4000) d GROUP BY i;
CREATE INDEX vwide4_idx ON vwide4 USING vsag (v vector_l2_ops);
SET enable_seqscan = off;
SELECT count(*) AS self_found FROM vwide4 w WHERE (SELECT id FROM vwide4 ORDER BY v <-> w.v LIMIT 1) = w.id;
RESET enable_seqscan;
CREATE TABLE vtoowide (v vector(16000));
CREATE INDEX ON vtoowide USING vsag (v vector_l2_ops);
DROP TABLE vwide, vwide4, vtoowide;
