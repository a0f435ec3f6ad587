-- DDL on vsag indexes: CREATE INDEX CONCURRENTLY, REINDEX, REINDEX CONCURRENTLY, DROP INDEX,
-- unlogged tables (init fork), and index-only-scan refusal.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

SELECT setseed(0.75);
CREATE TABLE dd (id int PRIMARY KEY, v vector(4));
INSERT INTO dd SELECT i, ARRAY[random(), random(), random(), random()] FROM generate_series(1, 500) i;
CREATE INDEX CONCURRENTLY dd_idx ON dd USING vsag (v vector_l2_ops);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'dd_idx'::regclass;
SET enable_seqscan = off;
SELECT id FROM dd ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 3;
REINDEX INDEX dd_idx;
SELECT id FROM dd ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 3;
REINDEX INDEX CONCURRENTLY dd_idx;
SELECT id FROM dd ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 3;
REINDEX TABLE dd;
SELECT severity, message FROM vsag_verify('dd_idx');
INSERT INTO dd VALUES (1000, '[0.5,0.5,0.5,0.5]');
SELECT id FROM dd ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 1;
DROP INDEX dd_idx;
DROP INDEX CONCURRENTLY IF EXISTS dd_idx;
RESET enable_seqscan;

-- unlogged table: the index gets an init fork holding an empty index
CREATE UNLOGGED TABLE du (id int, v vector(3));
INSERT INTO du VALUES (1, '[1,2,3]'), (2, '[3,2,1]');
CREATE INDEX du_idx ON du USING vsag (v vector_cosine_ops);
SELECT pg_relation_size('du_idx', 'init') > 0 AS has_init_fork;
SET enable_seqscan = off;
SELECT id FROM du ORDER BY v <=> '[1,2,3.1]' LIMIT 2;
INSERT INTO du VALUES (3, '[1,2,3.2]');
SELECT id FROM du ORDER BY v <=> '[1,2,3.2]' LIMIT 1;
RESET enable_seqscan;

-- vsag_verify on something that is not a vsag index
SELECT severity, message FROM vsag_verify('dd_pkey');
