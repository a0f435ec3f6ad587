-- vsag_verify(index, sample, ef_search): a self-query for sampled rows finds rows the index
-- holds but a search does not return; and only superusers or (if granted) the index owner
-- may run it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

-- Deterministic data (hashint4 is the same on every platform and version).
CREATE TABLE vs_ok (id int PRIMARY KEY, v vector(16));
INSERT INTO vs_ok
SELECT i, ARRAY(SELECT (hashint4(i * 16 + j)::float8 / 2147483648)::real FROM generate_series(1, 16) j)::vector(16)
FROM generate_series(1, 1000) i;
CREATE INDEX vs_ok_idx ON vs_ok USING vsag (v vector_l2_ops);

-- Healthy index: every sampled row is found at ef_search 200; sample 0 runs no self-query.
SELECT severity, message FROM vsag_verify('vs_ok_idx', 1000) WHERE message LIKE 'self-query%' OR severity <> 'info';
SELECT count(*) AS self_query_rows FROM vsag_verify('vs_ok_idx') WHERE message LIKE 'self-query%';
SELECT count(*) AS self_query_rows FROM vsag_verify('vs_ok_idx', 0, 200) WHERE message LIKE 'self-query%';
-- the closing summary stays the last row
SELECT severity, message LIKE '% pages, % nodes%' AS summary
FROM vsag_verify('vs_ok_idx', 50) WITH ORDINALITY r ORDER BY ordinality DESC LIMIT 1;
-- settings are restored afterwards
SHOW vsag.ef_search;
SHOW enable_seqscan;
-- rows deleted but not yet vacuumed are not visible, so not checked
DELETE FROM vs_ok WHERE id % 10 = 0;
SELECT message FROM vsag_verify('vs_ok_idx', 5000, 200) WHERE message LIKE 'self-query%' OR severity <> 'info';
-- a partial index: the self-query carries its predicate so the planner can use it
CREATE INDEX vs_ok_part ON vs_ok USING vsag (v vector_l2_ops) WHERE id > 500;
DROP INDEX vs_ok_idx;
SELECT message FROM vsag_verify('vs_ok_part', 1000, 200) WHERE message LIKE 'self-query%' OR severity <> 'info';
DROP INDEX vs_ok_part;
-- an expression index: the self-query orders by the expression
CREATE INDEX vs_ok_expr ON vs_ok USING vsag (((v * '[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]')::vector(16)) vector_l2_ops);
SELECT message FROM vsag_verify('vs_ok_expr', 1000, 200) WHERE message LIKE 'self-query%' OR severity <> 'info';
DROP INDEX vs_ok_expr;

-- A deliberately poor graph (4 neighbours per node, 64-d) searched with ef_search 1 loses
-- many rows; the check must report them, and the same number as an independent query.
CREATE TABLE vs_bad (id int PRIMARY KEY, v vector(64));
INSERT INTO vs_bad
SELECT i, ARRAY(SELECT (hashint4(i * 64 + j)::float8 / 2147483648)::real FROM generate_series(1, 64) j)::vector(64)
FROM generate_series(1, 1500) i;
CREATE INDEX vs_bad_idx ON vs_bad USING vsag (v vector_l2_ops) WITH (m = 4, ef_construction = 8);
CREATE TEMP TABLE vs_report AS SELECT * FROM vsag_verify('vs_bad_idx', 1500, 1);
SELECT count(*) > 0 AS misses_reported FROM vs_report WHERE severity = 'warning' AND message LIKE 'row % not returned by a self-query at ef_search 1:%';
SELECT (regexp_match(message, 'of (\d+) sampled'))[1] AS checked FROM vs_report WHERE message LIKE 'self-query%';
SELECT count(*) = (regexp_match((SELECT message FROM vs_report WHERE message LIKE 'self-query%'), ': (\d+) of'))[1]::int
       AS summary_counts_warnings
FROM vs_report WHERE severity = 'warning';
-- the same self-query written by hand, row by row
SET vsag.ef_search = 1;
SET enable_seqscan = off;
SELECT count(*) = (SELECT count(*) FROM vs_report WHERE severity = 'warning') AS matches_independent_query
FROM vs_bad t
WHERE NOT EXISTS (SELECT 1 FROM (SELECT ctid FROM vs_bad ORDER BY v <-> t.v LIMIT 10) n WHERE n.ctid = t.ctid);
RESET enable_seqscan;
RESET vsag.ef_search;

-- bad arguments
SELECT * FROM vsag_verify('vs_bad_idx', -1);
SELECT * FROM vsag_verify('vs_bad_idx', 10, 0);
SELECT * FROM vsag_verify('vs_bad_idx', 10, 10001);
SELECT * FROM vsag_verify('vs_bad_pkey', 10);
SELECT 1 AS alive;

-- privileges: not executable by PUBLIC; when granted, only on the caller's own indexes
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_vsag_verify_user;
RESET client_min_messages;
CREATE ROLE regress_vsag_verify_user;
GRANT SELECT ON vs_bad TO regress_vsag_verify_user;
SET ROLE regress_vsag_verify_user;
SELECT count(*) FROM vsag_verify('vs_bad_idx');
RESET ROLE;
GRANT EXECUTE ON FUNCTION vsag_verify(regclass, integer, integer) TO regress_vsag_verify_user;
SET ROLE regress_vsag_verify_user;
SELECT count(*) FROM vsag_verify('vs_bad_idx');
RESET ROLE;
ALTER TABLE vs_ok OWNER TO regress_vsag_verify_user;
CREATE INDEX vs_ok_idx2 ON vs_ok USING vsag (v vector_l2_ops);
SET ROLE regress_vsag_verify_user;
SELECT message FROM vsag_verify('vs_ok_idx2', 100) WHERE message LIKE 'self-query%';
RESET ROLE;
SELECT 1 AS alive;

DROP TABLE vs_ok, vs_bad;
REVOKE EXECUTE ON FUNCTION vsag_verify(regclass, integer, integer) FROM regress_vsag_verify_user;
DROP ROLE regress_vsag_verify_user;
