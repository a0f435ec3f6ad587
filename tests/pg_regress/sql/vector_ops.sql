-- Distance operators and functions, arithmetic, comparisons, btree, aggregates.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

SELECT '[1,2,3]'::vector <-> '[3,2,1]' AS l2,
       '[1,2,3]'::vector <#> '[3,2,1]' AS neg_ip,
       '[1,2,3]'::vector <=> '[3,2,1]' AS cosine,
       '[1,2,3]'::vector <+> '[3,2,1]' AS l1;
SELECT l2_distance('[0,0]', '[3,4]'), inner_product('[1,2]', '[3,4]'),
       cosine_distance('[1,0]', '[0,1]'), l1_distance('[0,0]', '[3,4]');
SELECT cosine_distance('[1,1]', '[1,1]') AS same, cosine_distance('[1,1]', '[-1,-1]') AS opposite;
SELECT cosine_distance('[0,0]', '[1,1]') AS zero_norm_is_nan;
SELECT vector_dims('[1,2,3]'), vector_norm('[3,4]'), l2_normalize('[3,4]'), l2_normalize('[0,0]');

SELECT '[1,2,3]'::vector + '[4,5,6]' AS add, '[1,2,3]'::vector - '[4,5,6]' AS sub,
       '[1,2,3]'::vector * '[4,5,6]' AS mul;

-- comparisons and btree: ORDER BY, DISTINCT, GROUP BY, index
SELECT '[1,2]'::vector < '[1,3]', '[1,2]'::vector = '[1,2]', '[1,2]'::vector <> '[1,2,0]',
       '[1,2]'::vector < '[1,2,0]', '[2]'::vector > '[1,9]';
CREATE TABLE ops_t (id int, v vector);
INSERT INTO ops_t VALUES (1, '[3,1]'), (2, '[1,2]'), (3, '[1,2]'), (4, '[1,1,1]'), (5, '[0,5]');
SELECT v FROM ops_t ORDER BY v, id;
SELECT DISTINCT v FROM ops_t ORDER BY v;
SELECT v, count(*) FROM ops_t GROUP BY v ORDER BY v;
CREATE INDEX ON ops_t USING btree (v);
SET enable_seqscan = off;
SELECT id FROM ops_t WHERE v = '[1,2]' ORDER BY id;
RESET enable_seqscan;

-- nearest neighbours by each operator (sequential scan, exact)
CREATE TABLE nn (id int, v vector(2));
INSERT INTO nn SELECT i, ARRAY[cos(i), sin(i) * i / 10.0]::real[] FROM generate_series(1, 50) i;
SELECT id FROM nn ORDER BY v <-> '[1,0]' LIMIT 3;
SELECT id FROM nn ORDER BY v <#> '[1,0]' LIMIT 3;
SELECT id FROM nn ORDER BY v <=> '[1,0]' LIMIT 3;
SELECT id FROM nn ORDER BY v <+> '[1,0]' LIMIT 3;

-- aggregates (also in parallel)
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::vector), ('[3,6]'), (NULL)) t(v);
SELECT avg(v) IS NULL AS empty_avg_is_null, sum(v) IS NULL AS empty_sum_is_null FROM ops_t WHERE false;
CREATE TABLE agg_t AS SELECT i, ARRAY[i % 10, 2 * (i % 10), -(i % 7)]::vector(3) AS v FROM generate_series(1, 100000) i;
ANALYZE agg_t;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM agg_t;
SELECT avg(v), sum(v) FROM agg_t;
RESET ALL;
