-- Every function callable from SQL validates dimensions and values like the input function:
-- NaN, infinity, 0 dimensions and more than 16000 dimensions are ERRORs, never a stored value.
-- The session keeps working after each one.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vsag;
RESET client_min_messages;

-- avg(vector)'s final function called directly with crafted states
SELECT vector_avg(ARRAY[2, 'NaN']::float8[]);
SELECT vector_avg(ARRAY[2, 'Infinity']::float8[]);
SELECT vector_avg(ARRAY[2, 4, '-Infinity']::float8[]);
SELECT vector_avg('{}'::float8[]);
SELECT vector_avg('{5}'::float8[]);
SELECT vector_avg('{NaN}'::float8[]);
SELECT vector_avg(ARRAY[0, 1, 2]::float8[]);
SELECT vector_avg(ARRAY[-1, 1]::float8[]);
SELECT vector_avg(ARRAY[0.5, 1]::float8[]);
SELECT vector_avg(ARRAY['NaN', 1]::float8[]);
SELECT vector_avg(ARRAY[1] || array_fill(1::float8, ARRAY[16001]));
SELECT vector_avg(ARRAY[1] || array_fill(1::float8, ARRAY[40000]));
SELECT vector_avg(ARRAY[1, 1e300]::float8[]);
SELECT vector_avg(ARRAY[[1, 2], [3, 4]]::float8[]);
SELECT vector_avg(ARRAY[1, NULL]::float8[]);
SELECT 1 AS alive;
-- valid states still work: no rows yet, and {count, sums...}
SELECT vector_avg('{0}'::float8[]) IS NULL AS no_rows_is_null;
SELECT vector_avg(ARRAY[2, 4, 6]::float8[]);
SELECT vector_dims(vector_avg(ARRAY[1] || array_fill(1::float8, ARRAY[16000])));
-- a table cannot store what the crafted calls would have produced
CREATE TABLE hard_t (v vector);
INSERT INTO hard_t SELECT vector_avg(ARRAY[2, 'NaN']::float8[]);
INSERT INTO hard_t SELECT vector_avg('{}'::float8[]);
INSERT INTO hard_t SELECT vector_avg(ARRAY[1] || array_fill(1::float8, ARRAY[40000]));
SELECT count(*) AS stored FROM hard_t;
SELECT 1 AS alive;

-- transition and combine functions called directly
SELECT vector_accum('{0}', '[1,2]');
SELECT vector_accum(ARRAY[1, 1, 2]::float8[], '[1,2]');
SELECT vector_accum(ARRAY['NaN', 1]::float8[], '[1]');
SELECT vector_accum(ARRAY[1, 'Infinity']::float8[], '[1]');
SELECT vector_accum(ARRAY[1, 1.7976931348623157e308]::float8[], '[3e38]') AS still_finite;
SELECT vector_accum('{}'::float8[], '[1]');
SELECT vector_accum(ARRAY[1, 2, 3]::float8[], '[1]');
SELECT vector_combine(ARRAY[1, 1e308]::float8[], ARRAY[1, 1.7e308]::float8[]);
SELECT vector_combine('{0}', ARRAY[3, 'NaN']::float8[]);
SELECT vector_combine('{0}', '{NaN}');
SELECT vector_combine(ARRAY[1, 2]::float8[], ARRAY[1, 2, 3]::float8[]);
SELECT vector_combine('{0}', ARRAY[2, 4, 6]::float8[]);
SELECT 1 AS alive;

-- aggregates over real rows: overflow is an error, not infinity
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
SELECT avg(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[3,4]')) t(v);
SELECT 1 AS alive;

-- element-wise arithmetic: overflow to infinity (and a product's underflow) are errors
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e20]'::vector * '[1e20]';
SELECT '[1e-30,2]'::vector * '[1e-30,1]';
SELECT '[3e38,1]'::vector - '[-3e38,1]';
SELECT '[1,2]'::vector + '[3,4]', '[1,2]'::vector - '[3,4]', '[1,2]'::vector * '[3,4]';
SELECT '[0,1e-30]'::vector * '[5,0]' AS exact_zeros_are_fine;
SELECT 1 AS alive;

-- l2_normalize stays finite at the extremes of float4
SELECT l2_normalize('[3e38,3e38]');
SELECT l2_normalize('[1e-45]');
SELECT l2_normalize('[0,0]');
SELECT vector_norm('[3e38,3e38,3e38]');

-- casts from arrays, also called directly with a typmod
SELECT array_to_vector('{1,2}'::integer[], 3, true);
SELECT array_to_vector('{}'::real[], -1, false);
SELECT array_to_vector(array_fill(1::real, ARRAY[16001]), -1, false);
SELECT array_to_vector(ARRAY['NaN']::double precision[], -1, false);
SELECT array_to_vector(ARRAY['-Infinity']::numeric[], -1, false);
SELECT array_to_vector(ARRAY[3.5e38]::double precision[], -1, false);
SELECT array_to_vector(ARRAY[1e39]::numeric[], -1, false);
SELECT array_to_vector('{1,2}'::integer[], 2, true);
SELECT 1 AS alive;

-- type input and length coercion called directly; typmod input
SELECT vector_in('[1,2]', 0, 3);
SELECT vector_in('[NaN]', 0, -1);
SELECT vector('[1,2]'::vector, 3, true);
SELECT vector('[1,2]'::vector, 2, true);
SELECT vector_typmod_in('{0}'::cstring[]);
SELECT vector_typmod_in('{16001}'::cstring[]);
SELECT vector_typmod_in('{3,4}'::cstring[]);
SELECT vector_typmod_in('{16000}'::cstring[]);
SELECT 1 AS alive;
DROP TABLE hard_t;
