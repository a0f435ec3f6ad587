-- vsag demo: recreated from scratch on every run so it always reflects the installed build.
\pset footer off
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS vsag CASCADE;
CREATE EXTENSION vsag;

DROP TABLE IF EXISTS items;
CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3));
INSERT INTO items VALUES
    (1, '[1,2,3]'), (2, '[4,5,6]'), (3, '[1,1,1]'), (4, '[-1,0,2]'), (5, '[0.5,2.5,3.5]');

\echo 'Nearest to [1,2,3] by L2 (<->), cosine (<=>), inner product (<#>), L1 (<+>):'
SELECT id, embedding,
       round((embedding <-> '[1,2,3]')::numeric, 4) AS l2,
       round((embedding <=> '[1,2,3]')::numeric, 4) AS cosine,
       round((embedding <#> '[1,2,3]')::numeric, 4) AS neg_ip,
       round((embedding <+> '[1,2,3]')::numeric, 4) AS l1
FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 3;

\echo 'A larger sample: 10,000 random 64-d vectors'
DROP TABLE IF EXISTS docs;
SELECT setseed(0.42);
CREATE TABLE docs AS
SELECT i AS id, array_agg(random()::real - 0.5)::vector(64) AS embedding
FROM generate_series(1, 10000) i, generate_series(1, 64) d
GROUP BY i;
SELECT count(*) AS rows, vector_dims((SELECT embedding FROM docs LIMIT 1)) AS dims FROM docs;

\echo 'Building a vsag index (cosine) on docs:'
\timing on
CREATE INDEX docs_embedding_idx ON docs USING vsag (embedding vector_cosine_ops);
\timing off
SELECT pg_size_pretty(pg_relation_size('docs_embedding_idx')) AS index_size;

\echo 'Top 5 by cosine distance to document 1, through the index:'
EXPLAIN (COSTS OFF) SELECT id FROM docs ORDER BY embedding <=> (SELECT embedding FROM docs WHERE id = 1) LIMIT 5;
SELECT id, round((embedding <=> (SELECT embedding FROM docs WHERE id = 1))::numeric, 4) AS cosine_distance
FROM docs ORDER BY embedding <=> (SELECT embedding FROM docs WHERE id = 1) LIMIT 5;
SELECT expanded, exact_distances, page_reads, rows FROM vsag_last_scan_stats();

\echo 'The same query without the index (exact):'
SET enable_indexscan = off;
SELECT id, round((embedding <=> (SELECT embedding FROM docs WHERE id = 1))::numeric, 4) AS cosine_distance
FROM docs ORDER BY embedding <=> (SELECT embedding FROM docs WHERE id = 1) LIMIT 5;
RESET enable_indexscan;

\echo 'Average of all embeddings (first 4 dims) and its norm:'
SELECT (avg(embedding)::real[])[1:4] AS avg_head, round(vector_norm(avg(embedding))::numeric, 4) AS avg_norm FROM docs;
