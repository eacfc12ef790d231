-- Undoes fastapi-pg-sse schema 1.4: back to 1.3's emit, emit_many, commit_events and triggers, which
-- address users only. Refuses while a trigger emits to groups, which 1.3 cannot: drop those first.
-- Deletes the events to groups and to everyone, which no 1.3 stream would read.
DO $$
DECLARE
    to_groups text;
BEGIN
    -- Emitters hold pending_events until they commit, and then need events: locked in that order, as
    -- soon as the downgrade starts, they cannot deadlock with it (in a transaction, as migrations run).
    LOCK TABLE fastapi_pg_sse.pending_events, fastapi_pg_sse.events IN ACCESS EXCLUSIVE MODE;
    SELECT string_agg(format('%s on %s (%s)', channel, on_table, group_column), ', ' ORDER BY channel, on_table::text)
        INTO to_groups
        FROM fastapi_pg_sse.triggers WHERE group_column IS NOT NULL;
    IF to_groups IS NOT NULL THEN
        RAISE EXCEPTION 'cannot undo fastapi-pg-sse schema 1.4: these triggers emit to groups, which 1.3 cannot: %', to_groups
            USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'drop them first, with fastapi_pg_sse.drop_trigger(channel, on_table)';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb, traceparent text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := coalesce(fastapi_pg_sse.event_problem(channel, target_user_id, event_type), fastapi_pg_sse.traceparent_problem(traceparent));
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload, traceparent)
        VALUES (channel, target_user_id, event_type, coalesce(payload, 'null'::jsonb), traceparent);
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[], traceparent text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := fastapi_pg_sse.traceparent_problem(traceparent);
BEGIN
    IF coalesce(cardinality(target_user_ids), 0) <> coalesce(cardinality(event_types), 0)
        OR coalesce(cardinality(target_user_ids), 0) <> coalesce(cardinality(payloads), 0) THEN
        RAISE EXCEPTION 'target_user_ids, event_types and payloads must be as long, got %, % and %',
            cardinality(target_user_ids), cardinality(event_types), cardinality(payloads)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(target_user_ids), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(problem, fastapi_pg_sse.event_problem(emit_many.channel, given.target_user_id, given.event_type)) INTO problem
        FROM unnest(target_user_ids, event_types) AS given (target_user_id, event_type)
        WHERE coalesce(problem, fastapi_pg_sse.event_problem(emit_many.channel, given.target_user_id, given.event_type)) IS NOT NULL
        LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload, traceparent)
        SELECT emit_many.channel, given.target_user_id, given.event_type, coalesce(given.payload, 'null'::jsonb), emit_many.traceparent
        FROM unnest(target_user_ids, event_types, payloads) WITH ORDINALITY
            AS given (target_user_id, event_type, payload, position)
        ORDER BY given.position;
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.commit_events() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    announced bigint;
    committed_at timestamptz;
BEGIN
    DELETE FROM fastapi_pg_sse.pending_commits WHERE xact_id = NEW.xact_id;
    LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE;
    committed_at := clock_timestamp();
    WITH moved AS (
        DELETE FROM fastapi_pg_sse.pending_events WHERE xact_id = NEW.xact_id
        RETURNING position, channel, target_user_id, type, payload, traceparent
    ), committed AS (
        INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, type, payload, created_at, xact_id, traceparent)
            SELECT nextval('fastapi_pg_sse.event_ids'), moved.channel, moved.target_user_id,
                moved.type, moved.payload, committed_at, NEW.xact_id, moved.traceparent
            FROM moved ORDER BY moved.position
            RETURNING id, channel, target_user_id
    )
    SELECT count(*) INTO announced FROM (  -- one statement: PERFORM cannot start with WITH
        SELECT pg_notify('fastapi_pg_sse', max(id) || ' ' || channel || ' ' || target_user_id)
        FROM committed GROUP BY channel, target_user_id
    ) AS notification;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_changes() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- 1.3's create_trigger and view of triggers, granted to whom 1.4's are.
ALTER VIEW fastapi_pg_sse.triggers RENAME TO triggers_of_1_4;
CREATE FUNCTION fastapi_pg_sse.create_trigger(channel text, on_table regclass, user_column text, event_prefix text, columns text[] DEFAULT NULL) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

CREATE VIEW fastapi_pg_sse.triggers AS
    SELECT argument[1] AS channel, trigger.tgrelid::regclass AS on_table, argument[2] AS user_column,
        argument[3] AS event_prefix, nullif(argument[4:cardinality(argument) - 1], '{}') AS columns
    FROM pg_trigger AS trigger
    CROSS JOIN LATERAL (
        SELECT array_agg(convert_from(decode(part, 'escape'), 'UTF8') ORDER BY number)
        FROM unnest(string_to_array(encode(trigger.tgargs, 'escape'), '\000'))
            WITH ORDINALITY AS parts (part, number)
    ) AS arguments (argument)
    WHERE trigger.tgfoid = 'fastapi_pg_sse.emit_changes'::regproc AND trigger.tgtype & 4 <> 0;
DO $$
DECLARE
    grant_ record;
BEGIN
    FOR grant_ IN
        SELECT 'EXECUTE ON FUNCTION fastapi_pg_sse.create_trigger(text, regclass, text, text, text[])' AS what, acl.grantee
            FROM pg_proc AS function CROSS JOIN LATERAL aclexplode(function.proacl) AS acl
            WHERE function.oid = 'fastapi_pg_sse.create_trigger(text, regclass, text, text, text[], text)'::regprocedure
                AND acl.grantee <> function.proowner
        UNION SELECT acl.privilege_type || ' ON fastapi_pg_sse.triggers', acl.grantee
            FROM pg_class AS view CROSS JOIN LATERAL aclexplode(view.relacl) AS acl
            WHERE view.oid = 'fastapi_pg_sse.triggers_of_1_4'::regclass AND acl.grantee <> view.relowner
    LOOP
        EXECUTE format('GRANT %s TO %s', grant_.what, CASE grant_.grantee WHEN 0 THEN 'PUBLIC' ELSE grant_.grantee::regrole::text END);
    END LOOP;
END;
$$;
DROP VIEW fastapi_pg_sse.triggers_of_1_4;
DROP FUNCTION fastapi_pg_sse.create_trigger(text, regclass, text, text, text[], text);

DROP FUNCTION fastapi_pg_sse.emit_to_group(text, text, text, jsonb, text);
DROP FUNCTION fastapi_pg_sse.emit_to_groups(text, text[], text[], jsonb[], text);
DROP FUNCTION fastapi_pg_sse.broadcast(text, text, jsonb, text);
DROP FUNCTION fastapi_pg_sse.broadcast_many(text, text[], jsonb[], text);
DROP FUNCTION fastapi_pg_sse.record(text, text, text[], text[], jsonb[], text);
DELETE FROM fastapi_pg_sse.events WHERE target_user_id = '';
DELETE FROM fastapi_pg_sse.pending_events WHERE target_user_id = '';
CREATE INDEX events_replay_idx ON fastapi_pg_sse.events (channel, target_user_id, id);
DROP INDEX fastapi_pg_sse.events_audience_idx;
ALTER TABLE fastapi_pg_sse.events DROP COLUMN target_group;
ALTER TABLE fastapi_pg_sse.pending_events DROP COLUMN target_group;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse FROM PUBLIC;

DELETE FROM fastapi_pg_sse.migrations WHERE version = '1.4';
