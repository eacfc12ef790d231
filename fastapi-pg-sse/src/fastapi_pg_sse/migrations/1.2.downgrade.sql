-- Undoes fastapi-pg-sse schema 1.2: back to 1.1's create_trigger and emit_changes, which find each
-- row's user in a column of the row only. Refuses while a trigger finds its users through a
-- foreign key, which would fail every write to its table under 1.1: drop those triggers first.
DO $$
DECLARE
    through_foreign_keys text;
BEGIN
    SELECT string_agg(format('%s on %s (%s)', channel, on_table, user_column), ', '
            ORDER BY channel, on_table::text)
        INTO through_foreign_keys
        FROM fastapi_pg_sse.triggers
        WHERE cardinality(fastapi_pg_sse.user_path(on_table, user_column)) = 2;
    IF through_foreign_keys IS NOT NULL THEN
        RAISE EXCEPTION 'cannot undo fastapi-pg-sse schema 1.2: these triggers find their users through a foreign key, which 1.1 cannot: %',
                through_foreign_keys
            USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'drop them first, with fastapi_pg_sse.drop_trigger(channel, on_table)';
    END IF;
END;
$$;

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
    EXECUTE format(
        'SELECT fastapi_pg_sse.emit_many(%L, array_agg(changed.%2$I::text), array_agg(%L::text), array_agg(%s))'
        ' FROM changed_rows AS changed WHERE length(changed.%2$I::text) > 0',
        TG_ARGV[0], TG_ARGV[1],
        TG_ARGV[2] || CASE TG_OP WHEN 'INSERT' THEN '_created' WHEN 'UPDATE' THEN '_updated' ELSE '_deleted' END,
        payload
    );
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.create_trigger(channel text, on_table regclass, user_column text, event_prefix text, columns text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.event_problem(channel, user_column, event_prefix);
    missing text;
    operation text;
BEGIN
    IF problem IS NOT NULL OR cardinality(columns) = 0 OR cardinality(columns) > 50
        OR cardinality(columns) > (SELECT count(DISTINCT name) FROM unnest(columns) AS name) THEN
        RAISE EXCEPTION 'cannot emit % from %: %', channel, on_table,
            coalesce(problem, 'columns must name 1 to 50 distinct columns, got ' || columns::text)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(name, ', ') INTO missing
        FROM unnest(user_column || coalesce(columns, '{}')) AS name
        WHERE NOT EXISTS (
            SELECT FROM pg_attribute AS attribute
            WHERE attribute.attrelid = on_table AND attribute.attname = name
                AND attribute.attnum > 0 AND NOT attribute.attisdropped
        );
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'cannot emit % from %: it has no column %', channel, on_table, missing
            USING ERRCODE = 'undefined_column';
    END IF;
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

DROP FUNCTION fastapi_pg_sse.recipient(text, regclass, text);
DROP FUNCTION fastapi_pg_sse.user_path(regclass, text);

DELETE FROM fastapi_pg_sse.migrations WHERE version = '1.2';
