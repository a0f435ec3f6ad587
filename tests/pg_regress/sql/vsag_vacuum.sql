-- VACUUM repairs the graph only when something is pending, frees the slots of nodes that
-- lost their last row, and inserts reuse them (the index does not grow under churn).
-- A temporary table: VACUUM removes its dead rows even while another session (autovacuum
-- analysing an earlier test's table) holds back the database's xmin horizon.
CREATE TEMP TABLE vv (id int PRIMARY KEY, v vector(8));
CREATE INDEX vv_idx ON vv USING vsag (v vector_l2_ops);
INSERT INTO vv SELECT i, ARRAY(SELECT sin(i * 7 + j) FROM generate_series(1, 8) j)::vector
FROM generate_series(1, 300) i;
-- Insert-only: no repair (the repair reports itself at DEBUG1).
SET client_min_messages = debug1;
VACUUM vv;
RESET client_min_messages;
SELECT message FROM vsag_verify('vv_idx');
SELECT pg_relation_size('vv_idx') AS size_before \gset
DELETE FROM vv WHERE id % 5 = 0;
SET client_min_messages = debug1;
VACUUM vv;
RESET client_min_messages;
SELECT message FROM vsag_verify('vv_idx');
-- Nothing pending any more: a second VACUUM does no repair.
SET client_min_messages = debug1;
VACUUM vv;
RESET client_min_messages;
-- New rows take the freed slots.
INSERT INTO vv SELECT i, ARRAY(SELECT cos(i * 3 + j) FROM generate_series(1, 8) j)::vector
FROM generate_series(1001, 1060) i;
SELECT message FROM vsag_verify('vv_idx');
SELECT pg_relation_size('vv_idx') = :size_before AS same_size;
-- Every row is found by a search for its own vector.
SET enable_seqscan = off;
SET vsag.ef_search = 100;
SELECT count(*) AS not_found FROM vv o
WHERE o.id NOT IN (SELECT i.id FROM vv i ORDER BY i.v <-> o.v LIMIT 3);
RESET enable_seqscan;
RESET vsag.ef_search;
DROP TABLE vv;
