-- fastapi-pg-sse schema 1.2: create_trigger's user column may be a path through a foreign key,
-- `<fk_column>.<user_column>`: each changed row emits to the user of the row it references.

-- What create_trigger's `user_column` names: a column of `on_table`, alone; or, when the table
-- has no column of that name and it holds a dot, a path `<fk_column>.<user_column>`, split at
-- its first dot: the column whose foreign key leads to the user, and the user's column in the
-- row it references.
CREATE FUNCTION fastapi_pg_sse.user_path(on_table regclass, user_column text)
RETURNS text[]
LANGUAGE sql
STABLE
RETURN CASE
    WHEN strpos(user_column, '.') = 0 OR EXISTS (
        SELECT FROM pg_catalog.pg_attribute AS attribute
        WHERE attribute.attrelid = on_table AND attribute.attname = user_column
            AND attribute.attnum > 0 AND NOT attribute.attisdropped
    ) THEN ARRAY[user_column]
    ELSE ARRAY[split_part(user_column, '.', 1), substr(user_column, strpos(user_column, '.') + 1)]
END;

-- The SQL expression, read in a row `changed` of `on_table`, of the user it emits to, as
-- create_trigger's `user_column` names it (see user_path): its column, or through a foreign key
-- whose single column is `fk_column`, `user_column` of the row it references, read by key (NULL
-- when that row is gone). Refuses a path that leads to no column the owner of emit_changes may
-- read: create_trigger calls it to refuse such a trigger, and emit_changes for each statement
-- (so that a trigger follows the referenced table and key when they are renamed).
CREATE FUNCTION fastapi_pg_sse.recipient(channel text, on_table regclass, user_column text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    path text[] := fastapi_pg_sse.user_path(on_table, user_column);
    found bigint;
    referenced oid;
    key_column text;
    targets text;
    reader regrole;
BEGIN
    IF cardinality(path) = 1 THEN
        RETURN format('changed.%I::text', user_column);
    END IF;
    SELECT count(*), min(target.referenced), min(target.key_column),
            string_agg(format('%s (%I)', target.referenced::regclass, target.key_column), ' and '
                ORDER BY target.referenced::regclass::text, target.key_column)
        INTO found, referenced, key_column, targets
        FROM (
            SELECT DISTINCT reference.confrelid AS referenced, key.attname::text AS key_column
            FROM pg_constraint AS reference
            JOIN pg_attribute AS foreign_key
                ON foreign_key.attrelid = reference.conrelid AND foreign_key.attnum = reference.conkey[1]
            JOIN pg_attribute AS key
                ON key.attrelid = reference.confrelid AND key.attnum = reference.confkey[1]
            WHERE reference.conrelid = on_table AND reference.contype = 'f'
                AND cardinality(reference.conkey) = 1 AND foreign_key.attname = path[1]
        ) AS target;
    IF found = 0 THEN
        RAISE EXCEPTION 'cannot emit % from %: % needs a foreign key whose single column is %, and % has none',
            channel, on_table, user_column, path[1], on_table
            USING ERRCODE = 'invalid_foreign_key';
    ELSIF found > 1 THEN
        RAISE EXCEPTION 'cannot emit % from %: % is ambiguous: foreign keys of % reference %',
            channel, on_table, user_column, path[1], targets
            USING ERRCODE = 'ambiguous_column';
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_attribute AS attribute
        WHERE attribute.attrelid = referenced AND attribute.attname = path[2]
            AND attribute.attnum > 0 AND NOT attribute.attisdropped
    ) THEN
        RAISE EXCEPTION 'cannot emit % from %: %, which % references, has no column %',
            channel, on_table, referenced::regclass, path[1], path[2]
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT function.proowner::regrole INTO reader
        FROM pg_proc AS function WHERE function.oid = 'fastapi_pg_sse.emit_changes()'::regprocedure;
    IF NOT (has_column_privilege(reader, referenced, key_column, 'SELECT')
            AND has_column_privilege(reader, referenced, path[2], 'SELECT')) THEN
        RAISE EXCEPTION 'cannot emit % from %: %, who runs its triggers, may not read % of %',
            channel, on_table, reader, format('%I, %I', key_column, path[2]), referenced::regclass
            USING ERRCODE = 'insufficient_privilege',
                HINT = format('GRANT SELECT (%I, %I) ON %s TO %s', key_column, path[2], referenced::regclass, reader);
    END IF;
    RETURN format('(SELECT referenced.%I::text FROM %s AS referenced WHERE referenced.%I = changed.%I)',
        path[2], referenced::regclass, key_column, path[1]);
END;
$$;

-- The statement-level triggers of create_trigger: one bulk emit per statement, in row order, to
-- each changed row's user (see recipient; a row without one, NULL or empty, emits nothing).
-- Arguments: the channel, the user column, the event types' prefix (INSERT sends
-- <prefix>_created, UPDATE <prefix>_updated, DELETE <prefix>_deleted), then the columns each
-- event carries, or none for every column of the row.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    payload text := 'to_jsonb(changed)';
BEGIN
    IF TG_NARGS > 3 THEN
        SELECT 'jsonb_build_object(' || string_agg(format('%L, changed.%I', name, name), ', ') || ')'
            INTO payload FROM unnest(TG_ARGV[3:TG_NARGS - 1]) AS name;
    END IF;
    -- OFFSET 0 keeps the subquery as it is written: each row's user is read once, in row order.
    EXECUTE format(
        'SELECT fastapi_pg_sse.emit_many(%L, array_agg(addressed.recipient), array_agg(%L::text),'
        ' array_agg(addressed.payload))'
        ' FROM (SELECT %s AS recipient, %s AS payload FROM changed_rows AS changed OFFSET 0) AS addressed'
        ' WHERE length(addressed.recipient) > 0',
        TG_ARGV[0],
        TG_ARGV[2] || CASE TG_OP WHEN 'INSERT' THEN '_created' WHEN 'UPDATE' THEN '_updated' ELSE '_deleted' END,
        fastapi_pg_sse.recipient(TG_ARGV[0], TG_RELID, TG_ARGV[1]),
        payload
    );
    RETURN NULL;
END;
$$;

-- Emits the channel's events from a table, to the user `user_column` names in each row a
-- statement inserts, updates or deletes (see recipient): three triggers named
-- <channel>_on_insert, _on_update and _on_delete. Refuses a column the table lacks, and a path
-- that leads to no user column, so that a misspelt name fails the migration.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.create_trigger(channel text, on_table regclass, user_column text, event_prefix text, columns text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.event_problem(channel, user_column, event_prefix);
    path text[] := fastapi_pg_sse.user_path(on_table, user_column);
    missing text;
    operation text;
BEGIN
    IF problem IS NOT NULL OR cardinality(columns) = 0 OR cardinality(columns) > 50
        OR cardinality(columns) > (SELECT count(DISTINCT name) FROM unnest(columns) AS name) THEN
        RAISE EXCEPTION 'cannot emit % from %: %', channel, on_table,
            coalesce(problem, 'columns must name 1 to 50 distinct columns, got ' || columns::text)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF '' = ANY (path) THEN
        RAISE EXCEPTION 'cannot emit % from %: % is neither a column of it nor a path such as article_id.author_id (a column that is the single column of a foreign key, a dot, and a column of the table it references)',
            channel, on_table, quote_literal(user_column)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(name, ', ') INTO missing
        FROM unnest(path[1] || coalesce(columns, '{}')) AS name
        WHERE NOT EXISTS (
            SELECT FROM pg_attribute AS attribute
            WHERE attribute.attrelid = on_table AND attribute.attname = name
                AND attribute.attnum > 0 AND NOT attribute.attisdropped
        );
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'cannot emit % from %: it has no column %', channel, on_table, missing
            USING ERRCODE = 'undefined_column';
    END IF;
    PERFORM fastapi_pg_sse.recipient(channel, on_table, user_column);
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s TABLE AS changed_rows'
            ' FOR EACH STATEMENT EXECUTE FUNCTION fastapi_pg_sse.emit_changes(%s)',
            channel || '_on_' || operation, operation, on_table,
            CASE operation WHEN 'delete' THEN 'OLD' ELSE 'NEW' END,
            (SELECT string_agg(quote_literal(argument), ', ')
                FROM unnest(ARRAY[channel, user_column, event_prefix] || coalesce(columns, '{}')) AS argument)
        );
    END LOOP;
END;
$$;

REVOKE EXECUTE ON FUNCTION fastapi_pg_sse.user_path(regclass, text),
    fastapi_pg_sse.recipient(text, regclass, text) FROM PUBLIC;

INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.2');
