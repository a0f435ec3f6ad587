-- quantizer = auto measures, at build time, how well 1-bit codes rank the table's nearest
-- neighbours and takes SQ8 codes when they rank them poorly: tight, well separated Gaussian
-- clusters, where every code of a cluster carries nearly the same signs (1-bit search found
-- 4 of 10 neighbours there). Data where 1-bit codes rank well keeps them (vsag_build_codes).
SELECT setseed(0.5);
CREATE TABLE ac_centres AS
SELECT c, array_agg(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) ORDER BY j) AS centre
FROM generate_series(1, 25) c, generate_series(1, 64) j GROUP BY c;
CREATE TABLE ac AS
SELECT i AS id,
       (SELECT array_agg(centre[j] + 0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) ORDER BY j)
        FROM generate_series(1, 64) j WHERE i > 0)::vector(64) AS v
FROM generate_series(1, 5000) i JOIN ac_centres ON c = 1 + i % 25;
CREATE INDEX ac_auto ON ac USING vsag (v vector_l2_ops);
SELECT message FROM vsag_verify('ac_auto') WHERE message LIKE 'codes:%';
-- recall@10 at the default ef_search, 20 rows' own vectors as queries, against exact order
SET enable_seqscan = off;
CREATE TEMP TABLE ac_got AS
SELECT q.id AS qid, n.id FROM ac q CROSS JOIN LATERAL (SELECT id FROM ac ORDER BY v <-> q.v LIMIT 10) n
WHERE q.id % 250 = 7;
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE ac_exact AS
SELECT q.id AS qid, n.id FROM ac q CROSS JOIN LATERAL (SELECT id FROM ac ORDER BY v <-> q.v LIMIT 10) n
WHERE q.id % 250 = 7;
RESET enable_indexscan;
RESET enable_bitmapscan;
SELECT count(*) AS queries FROM (SELECT DISTINCT qid FROM ac_exact) q;
SELECT count(*) >= 0.9 * 200 AS auto_recall_ok FROM ac_got JOIN ac_exact USING (qid, id);
-- An explicit quantizer is never second-guessed.
DROP INDEX ac_auto;
CREATE INDEX ac_bit ON ac USING vsag (v vector_l2_ops) WITH (quantizer = 'bit');
SELECT message FROM vsag_verify('ac_bit') WHERE message LIKE 'codes:%';
DROP TABLE ac, ac_centres;
