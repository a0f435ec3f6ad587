-- L1 distance (<+>) on the vsag index: vector_l1_ops.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

CREATE TABLE l1_t (id int PRIMARY KEY, v vector(8));
INSERT INTO l1_t
SELECT i, ARRAY(SELECT (hashint4(i * 8 + j)::float8 / 2147483648)::real FROM generate_series(1, 8) j)::vector(8)
FROM generate_series(1, 500) i;
CREATE TABLE l1_q (qid int, q vector(8));
INSERT INTO l1_q
SELECT i, ARRAY(SELECT (hashint4(-(i * 8 + j))::float8 / 2147483648)::real FROM generate_series(1, 8) j)::vector(8)
FROM generate_series(1, 5) i;
-- exact top-10 by L1, without any index
CREATE TEMP TABLE l1_exact AS
SELECT qid, ARRAY(SELECT id FROM l1_t ORDER BY v <+> q, id LIMIT 10) AS ids FROM l1_q;

-- 1-bit codes have no L1 estimate: an explicit choice is refused with a clear ERROR
CREATE INDEX l1_bit ON l1_t USING vsag (v vector_l1_ops) WITH (quantizer = 'bit');
SELECT 1 AS alive;

CREATE INDEX l1_idx ON l1_t USING vsag (v vector_l1_ops);
SET enable_seqscan = off;
SET vsag.ef_search = 100;
EXPLAIN (COSTS OFF) SELECT id FROM l1_t ORDER BY v <+> '[0,0,0,0,0,0,0,0]' LIMIT 10;
SELECT e.qid, (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY(SELECT id FROM l1_t ORDER BY v <+> q.q LIMIT 10)) x)
            = (SELECT array_agg(x ORDER BY x) FROM unnest(e.ids) x) AS same_top10
FROM l1_exact e JOIN l1_q q USING (qid) ORDER BY e.qid;
-- rows come back in L1 order
SELECT bool_and(d >= prev) AS ordered FROM (
    SELECT d, lag(d, 1, '-Infinity') OVER () AS prev
    FROM (SELECT v <+> '[0,0,0,0,0,0,0,0]' AS d FROM l1_t ORDER BY v <+> '[0,0,0,0,0,0,0,0]' LIMIT 50) s) t;
SELECT severity, message FROM vsag_verify('l1_idx', 500) WHERE message LIKE 'self-query%' OR severity <> 'info';
DROP INDEX l1_idx;

-- the other quantizers and full storage, and inserts after the build
CREATE INDEX l1_sq8 ON l1_t USING vsag (v vector_l1_ops) WITH (quantizer = sq8, storage = full);
INSERT INTO l1_t SELECT 1000 + qid, q FROM l1_q;
SELECT array_agg(id ORDER BY qid) AS own_rows_first
FROM l1_q, LATERAL (SELECT id FROM l1_t ORDER BY v <+> q LIMIT 1) n;
SELECT e.qid, (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY(SELECT id FROM l1_t WHERE id < 1000 ORDER BY v <+> q.q LIMIT 10)) x)
            = (SELECT array_agg(x ORDER BY x) FROM unnest(e.ids) x) AS same_top10
FROM l1_exact e JOIN l1_q q USING (qid) ORDER BY e.qid;
DROP INDEX l1_sq8;
CREATE INDEX l1_sq4 ON l1_t USING vsag (v vector_l1_ops) WITH (quantizer = sq4);
SELECT array_agg(id ORDER BY qid) AS own_rows_first
FROM l1_q, LATERAL (SELECT id FROM l1_t ORDER BY v <+> q LIMIT 1) n;
DROP INDEX l1_sq4;

-- From 64 dimensions the automatic quantizer is 1-bit codes, which L1 cannot use: the
-- default (and an explicit auto) falls back to sq8 instead of failing.
CREATE TABLE l1_w (id int PRIMARY KEY, v vector(64));
INSERT INTO l1_w
SELECT i, ARRAY(SELECT (hashint4(i * 64 + j)::float8 / 2147483648)::real FROM generate_series(1, 64) j)::vector(64)
FROM generate_series(1, 300) i;
SET enable_seqscan = on;
SET enable_indexscan = off;
CREATE TEMP TABLE l1_w_exact AS
SELECT q.id AS qid, ARRAY(SELECT id FROM l1_w ORDER BY v <+> q.v, id LIMIT 10) AS ids FROM l1_w q WHERE q.id <= 5;
RESET enable_indexscan;
SET enable_seqscan = off;
CREATE INDEX l1_w_bit ON l1_w USING vsag (v vector_l1_ops) WITH (quantizer = 'bit');
CREATE INDEX l1_w_auto ON l1_w USING vsag (v vector_l1_ops) WITH (quantizer = auto);
DROP INDEX l1_w_auto;
CREATE INDEX l1_w_idx ON l1_w USING vsag (v vector_l1_ops);
-- same pages as an explicit sq8 index; an L2 index on the same column does get 1-bit codes
CREATE INDEX l1_w_sq8 ON l1_w USING vsag (v vector_l1_ops) WITH (quantizer = sq8);
CREATE INDEX l1_w_l2 ON l1_w USING vsag (v vector_l2_ops);
SELECT pg_relation_size('l1_w_idx') = pg_relation_size('l1_w_sq8') AS auto_is_sq8,
       pg_relation_size('l1_w_idx') <> pg_relation_size('l1_w_l2') AS differs_from_l2_auto;
DROP INDEX l1_w_sq8, l1_w_l2;
SELECT e.qid, (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY(SELECT id FROM l1_w ORDER BY v <+> q.v LIMIT 10)) x)
            = (SELECT array_agg(x ORDER BY x) FROM unnest(e.ids) x) AS same_top10
FROM l1_w_exact e JOIN l1_w q ON q.id = e.qid ORDER BY e.qid;
RESET vsag.ef_search;
RESET enable_seqscan;
DROP TABLE l1_t, l1_q, l1_w;
