-- Every quantizer x storage x operator class agrees with brute force when the search is
-- exhaustive; odd data (constant and extreme dimensions) works; storage = codes re-ranks from
-- the table, also after HOT and non-HOT updates; the re-rank counters show the filter.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

SELECT setseed(0.25);
-- dimension 1 is constant, dimension 2 has extreme values, the rest are ordinary
CREATE TABLE qz (id int PRIMARY KEY, v vector(6));
INSERT INTO qz SELECT i, ARRAY[0.5, CASE WHEN i % 50 = 0 THEN 1e6 * (random() - 0.5) ELSE random() - 0.5 END,
    random() - 0.5, random() - 0.5, random() - 0.5, random() - 0.5]::vector(6)
FROM generate_series(1, 400) i;
CREATE TABLE qq (qid int, q vector(6));
INSERT INTO qq SELECT i, ARRAY[0.5, random() - 0.5, random() - 0.5, random() - 0.5, random() - 0.5, random() - 0.5]
FROM generate_series(1, 10) i;

CREATE FUNCTION qz_mismatches(op text, k int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r record; got int[]; want int[]; bad int := 0;
BEGIN
    FOR r IN SELECT qid, q FROM qq ORDER BY qid LOOP
        SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = on;
        EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM qz ORDER BY v %s %L LIMIT %s) s', op, r.q, k) INTO got;
        SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off;
        EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM qz ORDER BY v %s %L, id LIMIT %s) s', op, r.q, k) INTO want;
        IF got IS DISTINCT FROM want THEN bad := bad + 1; END IF;
    END LOOP;
    RETURN bad;
END $$;

-- exhaustive search (ef_search >= rows) must reproduce brute force exactly for every combination
CREATE FUNCTION qz_matrix() RETURNS TABLE (quantizer text, storage text, l2 int, ip int, cosine int)
LANGUAGE plpgsql AS $$
DECLARE qn text; sn text;
BEGIN
    SET vsag.ef_search = 400;
    FOREACH qn IN ARRAY ARRAY['sq8', 'sq4', 'bit'] LOOP
        FOREACH sn IN ARRAY ARRAY['full', 'codes'] LOOP
            EXECUTE format('CREATE INDEX qz_l2 ON qz USING vsag (v vector_l2_ops) WITH (quantizer = %L, storage = %L)', qn, sn);
            l2 := qz_mismatches('<->', 10);
            DROP INDEX qz_l2;
            EXECUTE format('CREATE INDEX qz_ip ON qz USING vsag (v vector_ip_ops) WITH (quantizer = %L, storage = %L)', qn, sn);
            ip := qz_mismatches('<#>', 10);
            DROP INDEX qz_ip;
            EXECUTE format('CREATE INDEX qz_cos ON qz USING vsag (v vector_cosine_ops) WITH (quantizer = %L, storage = %L)', qn, sn);
            cosine := qz_mismatches('<=>', 10);
            DROP INDEX qz_cos;
            quantizer := qn; storage := sn;
            RETURN NEXT;
        END LOOP;
    END LOOP;
    RESET vsag.ef_search;
END $$;
SELECT * FROM qz_matrix();

-- codes storage is much smaller than full storage
CREATE TABLE qbig (id int, v vector(64));
INSERT INTO qbig SELECT i, array_agg(random() - 0.5)::vector(64) FROM generate_series(1, 2000) i, generate_series(1, 64) d GROUP BY i;
CREATE INDEX qbig_full ON qbig USING vsag (v vector_l2_ops) WITH (storage = full, redundancy = 0);
CREATE INDEX qbig_bit ON qbig USING vsag (v vector_l2_ops) WITH (quantizer = 'bit', storage = codes, redundancy = 0);
SELECT pg_relation_size('qbig_bit') / 8192 AS bit_codes_pages, pg_relation_size('qbig_full') / 8192 AS full_pages;
DROP INDEX qbig_full;

-- storage = codes re-ranks from the heap: counters show heap fetches and the filter saving
SET enable_seqscan = off;
SET vsag.ef_search = 80;
SELECT count(*) FROM (SELECT id FROM qbig ORDER BY v <-> (SELECT v FROM qbig WHERE id = 7) LIMIT 10) s;
SELECT exact_distances > 0 AS exact_from_heap, heap_fetches >= exact_distances AS fetched, rows FROM vsag_last_scan_stats();
SET vsag.rerank = off;
SELECT count(*) FROM (SELECT id FROM qbig ORDER BY v <-> (SELECT v FROM qbig WHERE id = 7) LIMIT 10) s;
SELECT exact_distances AS exact_all FROM vsag_last_scan_stats();
RESET vsag.rerank;
RESET vsag.ef_search;

-- two precisions, the default from 64 dimensions on: 1-bit inline codes navigate, each
-- node's own SQ4 (or SQ8) code ranks the beam and spares most exact distances
CREATE FUNCTION qbig_recall(k int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE hits int := 0; r record; got int[]; want int[];
BEGIN
    FOR r IN SELECT v FROM qbig WHERE id % 100 = 1 LOOP
        SET LOCAL enable_seqscan = off;
        SELECT array_agg(id) INTO got FROM (SELECT id FROM qbig ORDER BY v <-> r.v LIMIT k) s;
        SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off;
        SELECT array_agg(id) INTO want FROM (SELECT id FROM qbig ORDER BY v <-> r.v LIMIT k) s;
        RESET enable_indexscan;
        hits := hits + (SELECT count(*) FROM unnest(got) g WHERE g = ANY (want));
    END LOOP;
    RETURN hits::float8 / (20 * k);
END $$;
DROP INDEX qbig_bit;
SET vsag.ef_search = 100;
CREATE INDEX qbig_two ON qbig USING vsag (v vector_l2_ops);
SELECT qbig_recall(10) >= 0.95 AS two_precision_recall;
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM qbig ORDER BY v <-> (SELECT v FROM qbig WHERE id = 7) LIMIT 10) s;
SELECT exact_distances AS exact_two FROM vsag_last_scan_stats() \gset
-- a LIMIT 10 query is one batch even where ef_search / rerank_factor < 10: each beam candidate
-- is re-ranked or skipped once (batches of 4 would skip, and count, the same candidates again)
SET vsag.ef_search = 16;
SELECT count(*) FROM (SELECT id FROM qbig ORDER BY v <-> (SELECT v FROM qbig WHERE id = 7) LIMIT 10) s;
SELECT exact_distances + rerank_skipped <= 16 AS one_batch, rows FROM vsag_last_scan_stats();
SET vsag.ef_search = 100;
DROP INDEX qbig_two;
CREATE INDEX qbig_one ON qbig USING vsag (v vector_l2_ops) WITH (quantizer = 'bit', fine_quantizer = none);
SELECT count(*) FROM (SELECT id FROM qbig ORDER BY v <-> (SELECT v FROM qbig WHERE id = 7) LIMIT 10) s;
SELECT :exact_two < exact_distances AS fewer_exact_with_two_precisions FROM vsag_last_scan_stats();
DROP INDEX qbig_one;
CREATE INDEX qbig_sq8 ON qbig USING vsag (v vector_l2_ops) WITH (fine_quantizer = sq8);
SELECT qbig_recall(10) >= 0.95 AS sq8_own_code_recall;
DROP INDEX qbig_sq8;
RESET enable_seqscan;
RESET vsag.ef_search;
-- full vectors need no own code: the option is accepted and has no effect
CREATE INDEX qbig_full2 ON qbig USING vsag (v vector_l2_ops) WITH (storage = full, fine_quantizer = sq8);
DROP INDEX qbig_full2;

-- re-rank from the heap after updates: HOT (non-indexed column) and non-HOT (the vector)
CREATE TABLE qh (id int PRIMARY KEY, note text, v vector(3)) WITH (fillfactor = 50);
INSERT INTO qh SELECT i, 'x', ARRAY[i, i, i] FROM generate_series(1, 300) i;
CREATE INDEX qh_idx ON qh USING vsag (v vector_l2_ops) WITH (quantizer = sq4, storage = codes);
UPDATE qh SET note = 'hot' WHERE id BETWEEN 100 AND 110;          -- HOT: same index entry
SELECT n_tup_hot_upd > 0 AS hot_happened FROM pg_stat_xact_user_tables WHERE relname = 'qh';
SELECT id, note FROM qh ORDER BY v <-> '[105,105,105]' LIMIT 3;
UPDATE qh SET v = '[1000,1000,1000]' WHERE id = 104;              -- non-HOT: new entry, old one dead
SELECT id, note, v FROM qh ORDER BY v <-> '[104,104,104]' LIMIT 3;
SELECT id FROM qh ORDER BY v <-> '[999,999,999]' LIMIT 1;
VACUUM qh;
SELECT id, v FROM qh ORDER BY v <-> '[104,104,104]' LIMIT 3;
SELECT severity, message FROM vsag_verify('qh_idx');
RESET enable_seqscan;

-- bad option values
CREATE INDEX ON qz USING vsag (v vector_l2_ops) WITH (quantizer = pq);
CREATE INDEX ON qz USING vsag (v vector_l2_ops) WITH (storage = disk);
CREATE INDEX ON qz USING vsag (v vector_l2_ops) WITH (fine_quantizer = 'bit');
CREATE INDEX ON qz USING vsag (((v + v)::vector(6)) vector_l2_ops) WITH (storage = codes);
-- storage = auto (the default) keeps full vectors for an expression index
CREATE INDEX qz_expr ON qz USING vsag (((v + v)::vector(6)) vector_l2_ops);
SET enable_seqscan = off;
SELECT id FROM qz ORDER BY (v + v)::vector(6) <-> '[1,0,0,0,0,0]' LIMIT 1;
RESET enable_seqscan;
SET vsag.rerank_factor = 0.5;
SET vsag.rerank_error_scale = -1;
SELECT 1 AS alive;
