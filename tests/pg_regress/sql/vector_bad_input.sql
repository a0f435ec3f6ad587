-- Every bad input raises a clear ERROR, and the session keeps working after each one.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

SELECT '[1,2'::vector;
SELECT 1 AS alive;
SELECT '[1,,2]'::vector;
SELECT '1,2'::vector;
SELECT '[a]'::vector;
SELECT '[1,2]x'::vector;
SELECT '[1,2] ]'::vector;
SELECT '[]'::vector;
SELECT ''::vector;
SELECT '[1,]'::vector;
SELECT '[,1]'::vector;
SELECT '[NaN]'::vector;
SELECT '[1,nan]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[-inf,1]'::vector;
SELECT '[1e999]'::vector;
SELECT '[3.5e38]'::vector;
SELECT '[1e-999]'::vector AS underflow_is_zero;
SELECT 1 AS alive;

-- dimension limits
SELECT array_fill(1, ARRAY[16001])::vector;
SELECT ('[' || repeat('1,', 16000) || '1]')::vector;
SELECT '[1]'::vector(16001);
SELECT '[1]'::vector(0);
SELECT '[1]'::vector(2,3);
SELECT 1 AS alive;

-- dimension mismatch between operands
SELECT '[1,2]'::vector <-> '[1,2,3]';
SELECT '[1,2]'::vector <#> '[1,2,3]';
SELECT '[1,2]'::vector <=> '[1,2,3]';
SELECT '[1,2]'::vector <+> '[1,2,3]';
SELECT '[1,2]'::vector + '[1,2,3]';
SELECT '[1,2]'::vector - '[1]';
SELECT '[1,2]'::vector * '[1]';
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT 1 AS alive;

-- typmod mismatch
CREATE TABLE bad_t (v vector(3));
INSERT INTO bad_t VALUES ('[1,2]');
INSERT INTO bad_t VALUES (ARRAY[1,2,3,4]);
SELECT '[1,2]'::vector(3);
INSERT INTO bad_t VALUES ('[1,2,3]');
SELECT * FROM bad_t;

-- overflow in arithmetic and casts
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[1e-30]'::vector * '[1e-30]';
SELECT ARRAY[1e39]::double precision[]::vector;
SELECT ARRAY[1e39]::numeric[]::vector;
SELECT ARRAY['NaN']::double precision[]::vector;
SELECT ARRAY['Infinity']::real[]::vector;
SELECT ARRAY['NaN']::numeric[]::vector;
SELECT ARRAY[1,NULL]::integer[]::vector;
SELECT ARRAY[[1,2],[3,4]]::integer[]::vector;
SELECT '{}'::integer[]::vector;
SELECT '[3e10]'::vector::integer[];
SELECT 1 AS alive;

-- malformed binary input (through binary COPY files written by the server)
CREATE TABLE bin_t (v vector);
-- field of 4 bytes: dim=2, unused=0, but no element data
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\4\\0\\2\\0\\0\\377\\377"' (FORMAT binary);
-- negative dimension
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\10\\377\\377\\0\\0\\0\\0\\0\\0\\377\\377"' (FORMAT binary);
-- huge dimension (0x7fff)
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\10\\177\\377\\0\\0\\0\\0\\0\\0\\377\\377"' (FORMAT binary);
-- unused field not zero
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\10\\0\\1\\0\\1\\77\\200\\0\\0\\377\\377"' (FORMAT binary);
-- a NaN element (0x7fc00000)
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\10\\0\\1\\0\\0\\177\\300\\0\\0\\377\\377"' (FORMAT binary);
-- trailing garbage inside the field (field length 10, one element)
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\12\\0\\1\\0\\0\\77\\200\\0\\0\\1\\2\\377\\377"' (FORMAT binary);
-- a valid one: dim=1, 1.0
COPY bin_t FROM PROGRAM 'printf "PGCOPY\\n\\377\\r\\n\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\10\\0\\1\\0\\0\\77\\200\\0\\0\\377\\377"' (FORMAT binary);
SELECT * FROM bin_t;
SELECT 1 AS alive;
