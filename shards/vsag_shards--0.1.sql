-- vsag_shards: one top-k query over every partition of a partitioned table, run on all shards at
-- once. A companion of vsag (not part of it) so that `CREATE EXTENSION vsag` needs no dblink.
--
-- Why dblink and not a plain query through the parent: PostgreSQL plans
-- `SELECT ... FROM parent ORDER BY v <=> q LIMIT k` as a Merge Append over the partitions, which
-- pushes ORDER BY but not LIMIT to postgres_fdw and reads the shards one after another (async
-- execution applies to Append only); postgres_fdw also has no way to pass this session's
-- `vsag.*` settings on. Here every foreign partition gets its own dblink connection (opened once
-- per session, from the partition's postgres_fdw server and user mapping) and one pipelined
-- message `index check; RESET ALL; SET vsag.*; SELECT ... ORDER BY v <op> q LIMIT k`; all messages are
-- sent before any answer is awaited, local partitions are searched while the shards work, and the
-- global top-k is merged here. Any failure is an ERROR: a partial answer is never returned.
\echo Use "CREATE EXTENSION vsag_shards CASCADE" to load this file. \quit

-- Re-raises an error with its detail and hint (RAISE rejects NULL options, and an empty one
-- would print an empty DETAIL line).
CREATE FUNCTION vsag_shards_raise(msg text, detail text, hint text, state text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF coalesce(detail, '') = '' AND coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING MESSAGE = msg, ERRCODE = state;
    ELSIF coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING MESSAGE = msg, DETAIL = detail, ERRCODE = state;
    ELSIF coalesce(detail, '') = '' THEN
        RAISE EXCEPTION USING MESSAGE = msg, HINT = hint, ERRCODE = state;
    END IF;
    RAISE EXCEPTION USING MESSAGE = msg, DETAIL = detail, HINT = hint, ERRCODE = state;
END
$fn$;

CREATE FUNCTION vsag_search_shards(parent anyelement, col name, query vector, k integer,
                                   op text DEFAULT '<=>')
RETURNS TABLE (shard regclass, distance double precision, item anyelement)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path FROM CURRENT
AS $fn$
DECLARE
    rel oid;
    rowtype text := pg_typeof(parent)::text;
    vs text;                  -- schema of the vsag extension (same on the shards, as postgres_fdw's `extensions` needs)
    opr text;                 -- 'OPERATOR(schema.<=>)'
    oprsig text;              -- 'schema.<=>(schema.vector,schema.vector)' for regoperator
    opr_oid oid;
    qlit text;                -- the query vector as a typed literal
    gucs text := '';          -- 'RESET ALL; SET vsag.x = ...; ' forwarded to every shard
    nguc int := 0;
    coldefs text;             -- dblink column definition list in the parent's column order
    rowexpr text;             -- ROW(r.c1, ...)::rowtype
    leaf record;
    parts text[] := '{}';     -- one SELECT per partition for the final UNION ALL
    conns text[] := '{}';     -- dblink connection names in use by this call
    shards text[] := '{}';    -- the partition each connection serves (for messages)
    servers text[] := '{}';
    sqls text[] := '{}';      -- the pipelined message for each connection
    ok boolean;
    cur text;                 -- the partition being handled, for the error message
    i int;
    j int;
    reused boolean;           -- a connection from an earlier call was used
    returned boolean := false;
    e_msg text; e_detail text; e_hint text; e_state text; e_ctx text;
BEGIN
    -- ---------------------------------------------------------------- input checks
    SELECT t.typrelid INTO rel FROM pg_type t WHERE t.oid = pg_typeof(parent);
    IF rel IS NULL OR rel = 0 THEN
        RAISE EXCEPTION 'vsag_search_shards: parent must be a row of a partitioned table, such as NULL::docs (got type %)', rowtype;
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = rel) IS DISTINCT FROM 'p' THEN
        RAISE EXCEPTION 'vsag_search_shards: % is not a partitioned table', rel::regclass;
    END IF;
    IF k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'vsag_search_shards: k must be at least 1 (got %)', coalesce(k::text, 'NULL');
    END IF;
    IF op IS NULL OR op NOT IN ('<->', '<#>', '<=>') THEN
        RAISE EXCEPTION 'vsag_search_shards: unknown operator %', coalesce(quote_literal(op), 'NULL')
            USING HINT = 'Use <-> (L2), <#> (negative inner product) or <=> (cosine), the operators vsag indexes.';
    END IF;
    IF query IS NULL THEN
        RAISE EXCEPTION 'vsag_search_shards: query vector is NULL';
    END IF;
    IF col IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                  WHERE a.attrelid = rel AND a.attname = col AND NOT a.attisdropped AND a.attnum > 0
                    AND t.typname = 'vector') THEN
        RAISE EXCEPTION 'vsag_search_shards: % has no vector column %', rel::regclass, coalesce(quote_ident(col), 'NULL');
    END IF;

    SELECT n.nspname INTO vs FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'vsag';
    opr := format('OPERATOR(%I.%s)', vs, op);
    oprsig := format('%I.%s(%I.vector,%I.vector)', vs, op, vs, vs);
    opr_oid := oprsig::regoperator;
    -- vector_dims loads vsag's library, so a `SET vsag.x` made before it was loaded is a real
    -- setting in pg_settings (not a hidden placeholder) by the time we read them.
    IF vector_dims(query) <> (SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col)
       AND (SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col) > 0 THEN
        RAISE EXCEPTION 'vsag_search_shards: the query has % dimensions, %.% has %', vector_dims(query),
            rel::regclass, quote_ident(col), (SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col);
    END IF;
    qlit := format('%L::%I.vector', query::text, vs);

    -- RESET ALL, then SET each vsag.* setting this session (or its configuration) has set: a kept
    -- shard connection never keeps a value from an earlier call, and the rest fall back to the
    -- shard's own configuration.
    SELECT 'RESET ALL; ' || coalesce(string_agg(format('SET %s = %L; ', s.name, current_setting(s.name)), ''
                                                ORDER BY s.name), ''),
           1 + count(*)
      INTO gucs, nguc
      FROM pg_settings s WHERE s.name LIKE 'vsag.%' AND s.source <> 'default';

    SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum),
           format('ROW(%s)::%s', string_agg(format('r.%I', a.attname), ', ' ORDER BY a.attnum), rowtype)
      INTO coldefs, rowexpr
      FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped;
    -- the distance column gets a name no user column has
    coldefs := coldefs || ', "vsag_shards distance" double precision';

    -- ---------------------------------------------------------------- one query per partition
    FOR leaf IN
        SELECT c.oid, c.oid::regclass::text AS name, c.relkind, n.nspname, c.relname,
               fs.srvname, w.fdwname, ft.ftoptions,
               -- the partition's own column names (postgres_fdw's column_name option on foreign ones)
               (SELECT string_agg(format('%I AS %I', coalesce(
                           (SELECT substr(o, 13) FROM unnest(la.attfdwoptions) o WHERE o LIKE 'column_name=%'),
                           la.attname), pa.attname), ', ' ORDER BY pa.attnum)
                  FROM pg_attribute pa
                  JOIN pg_attribute la ON la.attrelid = c.oid AND la.attname = pa.attname AND NOT la.attisdropped
                 WHERE pa.attrelid = rel AND pa.attnum > 0 AND NOT pa.attisdropped) AS cols,
               (SELECT coalesce((SELECT substr(o, 13) FROM unnest(la.attfdwoptions) o WHERE o LIKE 'column_name=%'),
                                la.attname::text)
                  FROM pg_attribute la WHERE la.attrelid = c.oid AND la.attname = col AND NOT la.attisdropped) AS vec
          FROM pg_partition_tree(rel) p
          JOIN pg_class c ON c.oid = p.relid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
          LEFT JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
          LEFT JOIN pg_foreign_data_wrapper w ON w.oid = fs.srvfdw
         WHERE p.isleaf
         ORDER BY c.oid::regclass::text
    LOOP
        DECLARE
            remote_nsp text := leaf.nspname;
            remote_rel text := leaf.relname;
            topk text;
            check_sql text;
            opt text;
        BEGIN
            IF leaf.relkind = 'f' THEN
                IF leaf.fdwname IS DISTINCT FROM 'postgres_fdw' THEN
                    RAISE EXCEPTION 'vsag_search_shards: partition % is a % foreign table; only postgres_fdw partitions can be searched',
                        leaf.name, leaf.fdwname;
                END IF;
                FOREACH opt IN ARRAY coalesce(leaf.ftoptions, '{}') LOOP
                    IF opt LIKE 'schema_name=%' THEN remote_nsp := substr(opt, 13); END IF;
                    IF opt LIKE 'table_name=%' THEN remote_rel := substr(opt, 12); END IF;
                END LOOP;
            END IF;
            topk := format('SELECT %s, %I %s %s AS "vsag_shards distance" FROM ONLY %I.%I'
                           ' ORDER BY "vsag_shards distance" LIMIT %s',
                           leaf.cols, leaf.vec, opr, qlit, remote_nsp, remote_rel, k);
            IF leaf.relkind = 'f' THEN
                -- a valid, non-partial vsag index on the column whose operator family has `op`
                check_sql := format(
                    'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i'
                    ' JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid'
                    ' JOIN pg_catalog.pg_am am ON am.oid = ic.relam'
                    ' JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[0]'
                    ' JOIN pg_catalog.pg_amop ao ON ao.amopfamily = opc.opcfamily AND ao.amoppurpose = ''o'''
                    ' JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]'
                    ' WHERE i.indrelid = %L::pg_catalog.regclass AND am.amname = ''vsag'' AND i.indisvalid'
                    ' AND i.indpred IS NULL AND a.attname = %L AND ao.amopopr = %L::pg_catalog.regoperator)',
                    format('%I.%I', remote_nsp, remote_rel), leaf.vec, oprsig);
                conns := conns || ('vsag_shards ' || leaf.name);
                shards := shards || leaf.name;
                servers := servers || leaf.srvname::text;
                -- pipelined: index check, settings, query; the answers are collected below
                sqls := sqls || (check_sql || '; ' || gucs || topk);
                parts := parts || format('SELECT %L::regclass, r."vsag_shards distance", %s FROM dblink_get_result(%L) AS r(%s)',
                                         leaf.oid, rowexpr, 'vsag_shards ' || leaf.name, coldefs);
            ELSE
                cur := leaf.name;
                -- the same check as on the shards, static so its plan is cached for the session
                IF NOT EXISTS (SELECT 1 FROM pg_index i
                                 JOIN pg_class ic ON ic.oid = i.indexrelid
                                 JOIN pg_am am ON am.oid = ic.relam
                                 JOIN pg_opclass opc ON opc.oid = i.indclass[0]
                                 JOIN pg_amop ao ON ao.amopfamily = opc.opcfamily AND ao.amoppurpose = 'o'
                                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                                WHERE i.indrelid = leaf.oid AND am.amname = 'vsag' AND i.indisvalid
                                  AND i.indpred IS NULL AND a.attname = col AND ao.amopopr = opr_oid) THEN
                    RAISE EXCEPTION 'vsag_search_shards: partition % has no vsag index on column % for operator %',
                        leaf.name, quote_ident(col), op;
                END IF;
                -- local partitions go first in the UNION ALL: they run while the shards work
                parts := format('SELECT %L::regclass, r."vsag_shards distance", %s FROM (%s) r',
                                leaf.oid, rowexpr, topk) || parts;
            END IF;
        END;
    END LOOP;
    IF cardinality(parts) = 0 THEN
        RAISE EXCEPTION 'vsag_search_shards: % has no partitions', rel::regclass;
    END IF;

    -- ---------------------------------------------------------------- fan out, merge
    -- A second attempt only when a connection kept from an earlier call turns out to be dead
    -- (the shard restarted meanwhile) and nothing has been returned yet.
    FOR attempt IN 1 .. 2 LOOP
        cur := NULL;
        reused := false;
        BEGIN
            -- send to every shard before waiting on any
            FOR i IN 1 .. coalesce(cardinality(conns), 0) LOOP
                cur := shards[i];
                IF conns[i] = ANY (coalesce(dblink_get_connections(), '{}')) THEN
                    reused := true;
                ELSE
                    PERFORM dblink_connect(conns[i], servers[i]);
                END IF;
                IF dblink_send_query(conns[i], sqls[i]) <> 1 THEN
                    RAISE EXCEPTION USING MESSAGE = dblink_error_message(conns[i]), ERRCODE = 'connection_failure';
                END IF;
            END LOOP;
            -- the index check's answer, then one result per RESET/SET
            FOR i IN 1 .. coalesce(cardinality(conns), 0) LOOP
                cur := shards[i];
                SELECT r.ok INTO ok FROM dblink_get_result(conns[i]) AS r(ok boolean);
                IF ok IS NOT TRUE THEN
                    RAISE EXCEPTION 'vsag_search_shards: partition % (server %) has no vsag index on column % for operator %',
                        shards[i], servers[i], quote_ident(col), op;
                END IF;
                FOR j IN 1 .. nguc LOOP
                    PERFORM 1 FROM dblink_get_result(conns[i]) AS r(status text);
                END LOOP;
            END LOOP;
            cur := NULL;
            returned := true;
            RETURN QUERY EXECUTE format('SELECT * FROM (%s) s(shard, distance, item) ORDER BY s.distance LIMIT %s',
                                        array_to_string(parts, ' UNION ALL '), k);
            -- the empty result that ends each connection's answers
            FOR i IN 1 .. coalesce(cardinality(conns), 0) LOOP
                cur := shards[i];
                PERFORM 1 FROM dblink_get_result(conns[i]) AS r(status text);
            END LOOP;
            RETURN;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                                    e_hint = PG_EXCEPTION_HINT, e_state = RETURNED_SQLSTATE,
                                    e_ctx = PG_EXCEPTION_CONTEXT;
            cur := coalesce(cur, substring(e_ctx from 'dblink connection named "vsag_shards ([^"]*)"'));
            -- drop this call's connections: a busy or broken one cannot serve the next call
            FOR i IN 1 .. coalesce(cardinality(conns), 0) LOOP
                IF conns[i] = ANY (coalesce(dblink_get_connections(), '{}')) THEN
                    BEGIN
                        IF dblink_is_busy(conns[i]) = 1 THEN PERFORM dblink_cancel_query(conns[i]); END IF;
                        PERFORM dblink_disconnect(conns[i]);
                    EXCEPTION WHEN OTHERS THEN NULL;
                    END;
                END IF;
            END LOOP;
            IF attempt = 1 AND reused AND NOT returned AND e_state LIKE '08%' THEN
                CONTINUE;
            END IF;
            IF e_msg NOT LIKE 'vsag_search_shards:%' THEN
                e_msg := format('vsag_search_shards: %s failed: %s',
                                coalesce('partition ' || cur || ' (server ' || servers[array_position(shards, cur)] || ')',
                                         'a shard'), e_msg);
            END IF;
            PERFORM vsag_shards_raise(e_msg, e_detail, e_hint, e_state);
        END;
    END LOOP;
END
$fn$;

COMMENT ON FUNCTION vsag_search_shards(anyelement, name, vector, integer, text) IS
    'global top-k over every partition of a partitioned table, all shards queried at once';
