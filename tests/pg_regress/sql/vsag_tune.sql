-- vsag_tune(index, target_recall, k, sample, time_budget, queries): query-level auto-tuning.
-- Its recall and timings vary with the machine, so only their properties are printed; the
-- progress NOTICEs (timings) are hidden. Also: precedence of the stored index options
-- (ef_search, search_m, prefetch_depth, early_stop) over the GUCs, adaptive termination, and every
-- bad input.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;

-- Deterministic data (hashint4 is the same on every platform and version).
CREATE TABLE tu (id int PRIMARY KEY, v vector(16));
INSERT INTO tu
SELECT i, ARRAY(SELECT (hashint4(i * 16 + j)::float8 / 2147483648)::real FROM generate_series(1, 16) j)::vector(16)
FROM generate_series(1, 2000) i;
CREATE INDEX tu_idx ON tu USING vsag (v vector_l2_ops) WITH (m = 12);

CREATE TEMP TABLE tried AS SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100);
-- one chosen setting, meeting the target with its margin; ef_search never below k
SELECT count(*) > 1 AS several_tried, count(*) FILTER (WHERE chosen) AS chosen,
       bool_and(recall BETWEEN 0 AND 1 AND recall_low <= recall AND mean_ms > 0) AS sane,
       bool_and(ef_search >= 10) AS ef_at_least_k,
       bool_and(search_m IN (0, 9, 6)) AS search_m_tried,
       count(*) FILTER (WHERE early_stop > 0) > 0 AS early_stop_tried
FROM tried;
SELECT recall_low >= 0.9 AS meets_target FROM tried WHERE chosen;
-- the chosen setting is stored as the index's options
SELECT c.reloptions = ARRAY['m=12', 'ef_search=' || t.ef_search, 'search_m=' || t.search_m,
                            'prefetch_depth=' || t.prefetch_depth, 'early_stop=' || t.early_stop] AS stored
FROM tried t, pg_class c WHERE t.chosen AND c.relname = 'tu_idx';
-- the session's settings are restored afterwards
SHOW vsag.ef_search;
SHOW vsag.search_m;
SHOW vsag.prefetch_depth;
SHOW vsag.early_stop;
SHOW enable_seqscan;
-- plain queries at default GUCs use the stored ef_search (iterative_scan = off returns at
-- most ef_search rows)
SET enable_seqscan = off;
SET vsag.iterative_scan = off;
SELECT count(*) = (SELECT ef_search FROM tried WHERE chosen) AS uses_stored_ef_search
FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 10000) s;

-- precedence: a GUC set anywhere wins, even at its default value; RESET yields to the index
ALTER INDEX tu_idx SET (ef_search = 7);
SELECT count(*) AS index_option FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s;
SET vsag.ef_search = 40;
SELECT count(*) AS set_to_default_wins FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s;
RESET vsag.ef_search;
SELECT count(*) AS after_reset FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s;
BEGIN;
SET LOCAL vsag.ef_search = 15;
SELECT count(*) AS set_local_wins FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s;
COMMIT;
CREATE FUNCTION tu_count() RETURNS bigint LANGUAGE sql SET vsag.ef_search = 11
    AS $$ SELECT count(*) FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s $$;
SELECT tu_count() AS function_set_clause_wins;
SELECT count(*) AS index_option_again FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s;
RESET vsag.iterative_scan;

-- search_m: a search follows only the first search_m neighbours of each node (index option,
-- or vsag.search_m when set; 0 = all)
ALTER INDEX tu_idx SET (ef_search = 40, search_m = 2);
SELECT count(*) FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 10) s;
CREATE TEMP TABLE st2 AS SELECT * FROM vsag_last_scan_stats();
SET vsag.search_m = 0;
SELECT count(*) FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 10) s;
CREATE TEMP TABLE st0 AS SELECT * FROM vsag_last_scan_stats();
SELECT st2.inline_estimates <= 2 * st2.expanded AS two_per_node,
       st0.inline_estimates > 2 * st0.expanded AS all_when_set_to_zero FROM st2, st0;
RESET vsag.search_m;
-- early_stop (adaptive termination): a search stops once that many expansions in a row have
-- not improved its 10th best distance, and still continues when more rows are wanted
ALTER INDEX tu_idx SET (ef_search = 200, search_m = 0, early_stop = 4);
SELECT count(*) FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 10) s;
CREATE TEMP TABLE es4 AS SELECT * FROM vsag_last_scan_stats();
SET vsag.early_stop = 0;
SELECT count(*) FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 10) s;
CREATE TEMP TABLE es0 AS SELECT * FROM vsag_last_scan_stats();
SELECT es4.expanded < es0.expanded AS stops_early, es4.exact_distances < es0.exact_distances AS fewer_exact FROM es4, es0;
RESET vsag.early_stop;
SELECT count(*) AS continues FROM (SELECT id FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 1) LIMIT 1000) s;
-- the same rows as an exact scan for the nearest 5 of one query
SELECT array_agg(id ORDER BY d, id) = (SELECT array_agg(id ORDER BY d, id) FROM
         (SELECT id, v <-> (SELECT v FROM tu WHERE id = 2) AS d FROM tu ORDER BY d, id LIMIT 5) e) AS top5_exact
FROM (SELECT id, v <-> (SELECT v FROM tu WHERE id = 2) AS d FROM tu ORDER BY v <-> (SELECT v FROM tu WHERE id = 2) LIMIT 5) s;
SET vsag.early_stop = -1;
SET vsag.early_stop = 10001;
ALTER INDEX tu_idx SET (early_stop = -2);
SET vsag.search_m = 101;
ALTER INDEX tu_idx SET (search_m = -1);
ALTER INDEX tu_idx SET (prefetch_depth = 65);
ALTER INDEX tu_idx RESET (ef_search, search_m, prefetch_depth, early_stop);
RESET enable_seqscan;

-- a user's query table (vectors that are not rows of the table)
CREATE TABLE tu_q (id int, v vector(16));
INSERT INTO tu_q
SELECT i, ARRAY(SELECT (hashint4(-i * 16 - j)::float8 / 2147483648)::real FROM generate_series(1, 16) j)::vector(16)
FROM generate_series(1, 50) i;
SELECT count(*) FILTER (WHERE chosen) AS chosen FROM vsag_tune('tu_idx', 0.9, 10, 100, '10 minutes', 'tu_q');
SELECT reloptions[2] LIKE 'ef_search=%' AS stored FROM pg_class WHERE relname = 'tu_idx';
-- a partial index: the sample and the queries carry its predicate
CREATE TABLE tu_p AS SELECT * FROM tu;
CREATE INDEX tu_part ON tu_p USING vsag (v vector_l2_ops) WHERE id > 1000;
SELECT count(*) FILTER (WHERE chosen) AS chosen, bool_and(recall_low >= 0.9) FILTER (WHERE chosen) AS meets_target
FROM vsag_tune('tu_part', 0.9, 5, 50);
DROP TABLE tu_p;

-- bad input
SELECT * FROM vsag_tune('tu_pkey');
SELECT * FROM vsag_tune('tu');
SELECT * FROM vsag_tune('tu_idx', 0);
SELECT * FROM vsag_tune('tu_idx', 1.5);
SELECT * FROM vsag_tune('tu_idx', 'NaN');
SELECT * FROM vsag_tune('tu_idx', 0.9, 0);
SELECT * FROM vsag_tune('tu_idx', 0.9, 1001);
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 0);
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100, '0 seconds');
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100, '-1 minute');
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100, '1 microsecond');
SELECT * FROM vsag_tune(NULL);
SELECT * FROM vsag_tune('tu_idx', NULL);
SELECT * FROM vsag_tune('tu_idx', 0.9, NULL);
CREATE TABLE tu_empty (id int, v vector(16));
CREATE INDEX tu_empty_idx ON tu_empty USING vsag (v vector_l2_ops);
SELECT * FROM vsag_tune('tu_empty_idx');
CREATE TABLE tu_q3 (v vector(3));
INSERT INTO tu_q3 VALUES ('[1,2,3]');
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100, '1 minute', 'tu_q3');
CREATE TABLE tu_qx (v real[]);
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100, '1 minute', 'tu_qx');
CREATE TABLE tu_q0 (v vector(16));
SELECT * FROM vsag_tune('tu_idx', 0.9, 10, 100, '1 minute', 'tu_q0');
SELECT reloptions FROM pg_class WHERE relname = 'tu_empty_idx';
SELECT 1 AS alive;

-- privileges: not executable by PUBLIC; when granted, only on the caller's own indexes
DROP ROLE IF EXISTS regress_vsag_tune_user;
CREATE ROLE regress_vsag_tune_user;
GRANT SELECT ON tu TO regress_vsag_tune_user;
SET ROLE regress_vsag_tune_user;
SELECT count(*) FROM vsag_tune('tu_idx');
RESET ROLE;
GRANT EXECUTE ON FUNCTION vsag_tune(regclass, float8, integer, integer, interval, regclass) TO regress_vsag_tune_user;
SET ROLE regress_vsag_tune_user;
SELECT count(*) FROM vsag_tune('tu_idx');
RESET ROLE;
ALTER TABLE tu OWNER TO regress_vsag_tune_user;
SET ROLE regress_vsag_tune_user;
SELECT count(*) FILTER (WHERE chosen) AS chosen FROM vsag_tune('tu_idx', 0.9, 10, 20);
RESET ROLE;

DROP TABLE tu, tu_q, tu_empty, tu_q3, tu_qx, tu_q0;
DROP FUNCTION tu_count();
REVOKE EXECUTE ON FUNCTION vsag_tune(regclass, float8, integer, integer, interval, regclass) FROM regress_vsag_tune_user;
DROP ROLE regress_vsag_tune_user;
