-- Text and binary I/O, typmods, casts.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

SELECT '[1,2,3]'::vector;
SELECT '  [ 1 , -2.5 ,3e-2 ]  '::vector;
SELECT '[1e-7,1.5e20,123456,0.1,-0]'::vector;
SELECT '[3.4028235e38,-3.4028235e38,1e-45]'::vector;
SELECT '[0.1,0.2,0.3]'::vector::text::vector = '[0.1,0.2,0.3]'::vector AS text_round_trip;

-- typmod
CREATE TABLE io_t (id int, v vector(3));
INSERT INTO io_t VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (3, NULL);
SELECT * FROM io_t ORDER BY id;
SELECT '[1,2,3]'::vector(3);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'io_t'::regclass AND attname = 'v';

-- binary round trip through COPY (FORMAT binary): uses vector_send / vector_recv
COPY io_t TO '/tmp/vsag_regress_io.bin' (FORMAT binary);
CREATE TABLE io_t2 (LIKE io_t);
COPY io_t2 FROM '/tmp/vsag_regress_io.bin' (FORMAT binary);
SELECT * FROM io_t2 ORDER BY id;
SELECT count(*) AS differing FROM io_t a JOIN io_t2 b USING (id) WHERE a.v IS DISTINCT FROM b.v;
SELECT vector_send('[1,-2.5]');

-- casts to and from arrays
SELECT ARRAY[1,2,3]::vector;
SELECT ARRAY[1.5,2.25]::real[]::vector;
SELECT ARRAY[1.5,2.25]::double precision[]::vector;
SELECT ARRAY[1.5,2.25]::numeric[]::vector;
SELECT '[1,2.5]'::vector::real[];
SELECT '[1,2.5]'::vector::double precision[];
SELECT '[1,2.5,-3.5]'::vector::integer[];
SELECT '[1,2.5]'::vector::numeric[];
SELECT ARRAY[1,2,3]::vector(3);
INSERT INTO io_t VALUES (4, ARRAY[7,8,9]);
SELECT v FROM io_t WHERE id = 4;

-- large dimension is fine up to 16000
SELECT vector_dims(array_fill(1, ARRAY[16000])::vector);
