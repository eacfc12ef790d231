-- fastapi-pg-sse schema 1.4: an event goes to a user, to a group (its target_group), or to every
-- stream of its channel, from SQL, from Python and from the triggers of create_trigger.

-- A 1.3 trigger whose user column begins with `group:` would be taken for one to a group, which
-- 1.4 marks so: refuses while any is there.
DO $$
DECLARE
    ambiguous text;
BEGIN
    SELECT string_agg(format('%s on %s (%s)', channel, on_table, user_column), ', ' ORDER BY channel, on_table::text)
        INTO ambiguous FROM fastapi_pg_sse.triggers WHERE user_column LIKE 'group:%';
    IF ambiguous IS NOT NULL THEN
        RAISE EXCEPTION 'cannot upgrade to fastapi-pg-sse schema 1.4: these triggers read their users from a column whose name begins with group:, which 1.4 takes for a group: %', ambiguous
            USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'rename the column, drop the trigger with fastapi_pg_sse.drop_trigger(channel, on_table) and create it again after the upgrade';
    END IF;
END;
$$;

-- An event of a user has its target_user_id and the target_group ''; of a group, the target_user_id
-- '' (which no user id can be, so that a 1.3 runtime reading this table delivers it to nobody) and
-- its target_group; to everyone, both ''. A constant default: adding the columns rewrites no row.
ALTER TABLE fastapi_pg_sse.pending_events ADD COLUMN target_group text NOT NULL DEFAULT '';
ALTER TABLE fastapi_pg_sse.events ADD COLUMN target_group text NOT NULL DEFAULT '';
-- A stream reads each of its audiences (its user, each of its groups, everyone) in id order.
CREATE INDEX events_audience_idx ON fastapi_pg_sse.events (channel, target_user_id, target_group, id);
DROP INDEX fastapi_pg_sse.events_replay_idx;

-- Records events in the caller's transaction, in the order given, each checked, numbered and
-- announced as it commits (commit_events): `audience` 'user' to the user each target names,
-- 'group' to the members of the group each names, 'everyone' (targets NULL) to every stream of
-- the channel. What emit, emit_many, emit_to_group(s) and broadcast(_many) call.
CREATE FUNCTION fastapi_pg_sse.record(channel text, audience text, targets text[], event_types text[], payloads jsonb[], traceparent text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.traceparent_problem(traceparent);
    label text := CASE audience WHEN 'user' THEN 'target_user_id' ELSE 'target_group' END;
BEGIN
    IF audience = 'everyone' THEN
        targets := array_fill('everyone'::text, ARRAY[coalesce(cardinality(event_types), 0)]);
    END IF;
    IF coalesce(cardinality(targets), 0) <> coalesce(cardinality(event_types), 0)
        OR coalesce(cardinality(event_types), 0) <> coalesce(cardinality(payloads), 0) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = CASE audience WHEN 'everyone'
            THEN format('event_types and payloads must be as long, got %s and %s', coalesce(cardinality(event_types), 0), coalesce(cardinality(payloads), 0))
            ELSE format('%ss, event_types and payloads must be as long, got %s, %s and %s', label, coalesce(cardinality(targets), 0), coalesce(cardinality(event_types), 0), coalesce(cardinality(payloads), 0)) END;
    END IF;
    SELECT coalesce(problem, replace(fastapi_pg_sse.event_problem(record.channel, given.target, given.event_type), 'target_user_id', label))
        INTO problem
        FROM unnest(targets, event_types) AS given (target, event_type)
        WHERE coalesce(problem, fastapi_pg_sse.event_problem(record.channel, given.target, given.event_type)) IS NOT NULL
        LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(targets), 0) = 0 THEN RETURN; END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, target_group, type, payload, traceparent)  -- an unknown audience: NULL, refused
        SELECT record.channel, CASE audience WHEN 'user' THEN given.target WHEN 'group' THEN '' WHEN 'everyone' THEN '' END,
            CASE audience WHEN 'group' THEN given.target ELSE '' END,
            given.event_type, coalesce(given.payload, 'null'::jsonb), record.traceparent
        FROM unnest(targets, event_types, payloads) WITH ORDINALITY AS given (target, event_type, payload, position)
        ORDER BY given.position;
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

-- emit and emit_many, as 1.3 made them, through record.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb, traceparent text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'user', ARRAY[target_user_id], ARRAY[event_type], ARRAY[payload], traceparent);

CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[], traceparent text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'user', target_user_ids, event_types, payloads, traceparent);

-- An event to the streams of every member of a group; a group is named as a user id is.
CREATE FUNCTION fastapi_pg_sse.emit_to_group(channel text, target_group text, event_type text, payload jsonb, traceparent text DEFAULT NULL)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'group', ARRAY[target_group], ARRAY[event_type], ARRAY[payload], traceparent);

-- Many events in one statement, each to its group, in the order given.
CREATE FUNCTION fastapi_pg_sse.emit_to_groups(channel text, target_groups text[], event_types text[], payloads jsonb[], traceparent text DEFAULT NULL)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'group', target_groups, event_types, payloads, traceparent);

-- An event to every stream of the channel, whoever its user.
CREATE FUNCTION fastapi_pg_sse.broadcast(channel text, event_type text, payload jsonb, traceparent text DEFAULT NULL)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'everyone', NULL, ARRAY[event_type], ARRAY[payload], traceparent);

-- Many events to every stream of the channel, in the order given.
CREATE FUNCTION fastapi_pg_sse.broadcast_many(channel text, event_types text[], payloads jsonb[], traceparent text DEFAULT NULL)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'everyone', NULL, event_types, payloads, traceparent);

-- commit_events, moving each event's target_group with it. A notification names the audience as
-- `<id> <channel> <user>`, or `<id> <channel> \n<group>` (`\n` alone: everyone), which a 1.3
-- listener takes for a user no stream can have.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.commit_events()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    announced bigint;
    committed_at timestamptz;
BEGIN
    DELETE FROM fastapi_pg_sse.pending_commits WHERE xact_id = NEW.xact_id;
    LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE;
    committed_at := clock_timestamp();
    WITH moved AS (
        DELETE FROM fastapi_pg_sse.pending_events WHERE xact_id = NEW.xact_id
        RETURNING position, channel, target_user_id, target_group, type, payload, traceparent
    ), committed AS (
        INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, target_group, type, payload, created_at, xact_id, traceparent)
            SELECT nextval('fastapi_pg_sse.event_ids'), moved.channel, moved.target_user_id, moved.target_group,
                moved.type, moved.payload, committed_at, NEW.xact_id, moved.traceparent
            FROM moved ORDER BY moved.position
            RETURNING id, channel, target_user_id, target_group
    )
    SELECT count(*) INTO announced FROM (  -- one statement: PERFORM cannot start with WITH
        SELECT pg_notify('fastapi_pg_sse', max(id) || ' ' || channel || ' '
            || CASE target_user_id WHEN '' THEN E'\n' || target_group ELSE target_user_id END)
        FROM committed GROUP BY channel, target_user_id, target_group
    ) AS notification;
    RETURN NULL;
END;
$$;

-- The triggers of create_trigger: one bulk emit per statement, to each changed row's user, or, for
-- a trigger made with group_column (its second argument `group:<column>`), to its group.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    payload text := 'to_jsonb(changed)';
    to_group boolean := TG_ARGV[1] LIKE 'group:%';
BEGIN
    IF TG_NARGS > 3 THEN
        SELECT 'jsonb_build_object(' || string_agg(format('%L, changed.%I', name, name), ', ') || ')'
            INTO payload FROM unnest(TG_ARGV[3:TG_NARGS - 1]) AS name;
    END IF;
    -- OFFSET 0 keeps the subquery as it is written: each row's audience is read once, in row order.
    EXECUTE format(
        'SELECT fastapi_pg_sse.record(%L, %L, array_agg(addressed.recipient), array_agg(%L::text),'
        ' array_agg(addressed.payload), NULL)'
        ' FROM (SELECT %s AS recipient, %s AS payload FROM changed_rows AS changed OFFSET 0) AS addressed'
        ' WHERE length(addressed.recipient) > 0',
        TG_ARGV[0],
        CASE WHEN to_group THEN 'group' ELSE 'user' END,
        TG_ARGV[2] || CASE TG_OP WHEN 'INSERT' THEN '_created' WHEN 'UPDATE' THEN '_updated' ELSE '_deleted' END,
        fastapi_pg_sse.recipient(TG_ARGV[0], TG_RELID, CASE WHEN to_group THEN substr(TG_ARGV[1], 7) ELSE TG_ARGV[1] END),
        payload
    );
    RETURN NULL;
END;
$$;

-- create_trigger gains group_column: the events of each changed row go to the group it names (a
-- column, or a path through a foreign key, as user_column), instead of to a user. It replaces 1.3's,
-- dropped below once its grants are carried over: a call of 1.3's form, by position or by name,
-- calls it unchanged.
CREATE FUNCTION fastapi_pg_sse.create_trigger(channel text, on_table regclass, user_column text DEFAULT NULL, event_prefix text DEFAULT NULL, columns text[] DEFAULT NULL, group_column text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    audience_column text := coalesce(user_column, group_column);
    problem text := fastapi_pg_sse.event_problem(channel, audience_column, event_prefix);
    path text[] := fastapi_pg_sse.user_path(on_table, audience_column);
    missing text;
    operation text;
BEGIN
    IF (user_column IS NULL) = (group_column IS NULL) THEN
        problem := 'name either user_column or group_column, not ' || CASE WHEN user_column IS NULL THEN 'neither' ELSE 'both' END;
    ELSIF user_column LIKE 'group:%' THEN  -- how its trigger marks a group column
        problem := 'user_column cannot begin with group:, got ' || quote_literal(user_column);
    ELSIF problem IS NULL AND (cardinality(columns) = 0 OR cardinality(columns) > 50
        OR cardinality(columns) > (SELECT count(DISTINCT name) FROM unnest(columns) AS name)) THEN
        problem := 'columns must name 1 to 50 distinct columns, got ' || columns::text;
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'cannot emit % from %: %', channel, on_table, replace(problem, 'target_user_id', CASE WHEN user_column IS NULL THEN 'group_column' ELSE 'target_user_id' END)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF '' = ANY (path) THEN
        RAISE EXCEPTION 'cannot emit % from %: % is neither a column of it nor a path such as article_id.author_id (a column that is the single column of a foreign key, a dot, and a column of the table it references)',
            channel, on_table, quote_literal(audience_column)
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
    PERFORM fastapi_pg_sse.recipient(channel, on_table, audience_column);
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s TABLE AS changed_rows'
            ' FOR EACH STATEMENT EXECUTE FUNCTION fastapi_pg_sse.emit_changes(%s)',
            channel || '_on_' || operation, operation, on_table,
            CASE operation WHEN 'delete' THEN 'OLD' ELSE 'NEW' END,
            (SELECT string_agg(quote_literal(argument), ', ')
                FROM unnest(ARRAY[channel, coalesce(user_column, 'group:' || group_column), event_prefix]
                    || coalesce(columns, '{}')) AS argument)
        );
    END LOOP;
END;
$$;

-- The triggers create_trigger made, as it was called: group_column joins the view's columns.
CREATE OR REPLACE VIEW fastapi_pg_sse.triggers AS
    SELECT argument[1] AS channel, trigger.tgrelid::regclass AS on_table,
        CASE WHEN argument[2] NOT LIKE 'group:%' THEN argument[2] END AS user_column,
        argument[3] AS event_prefix, nullif(argument[4:cardinality(argument) - 1], '{}') AS columns,
        CASE WHEN argument[2] LIKE 'group:%' THEN substr(argument[2], 7) END AS group_column
    FROM pg_trigger AS trigger
    CROSS JOIN LATERAL (
        SELECT array_agg(convert_from(decode(part, 'escape'), 'UTF8') ORDER BY number)
        FROM unnest(string_to_array(encode(trigger.tgargs, 'escape'), '\000'))
            WITH ORDINALITY AS parts (part, number)
    ) AS arguments (argument)
    WHERE trigger.tgfoid = 'fastapi_pg_sse.emit_changes'::regproc AND trigger.tgtype & 4 <> 0;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse FROM PUBLIC;

-- The roles that may emit (granted any form of emit or emit_many) may emit to groups and broadcast;
-- those granted 1.3's create_trigger, the new one.
DO $$
DECLARE
    grant_ record;
BEGIN
    FOR grant_ IN
        SELECT DISTINCT function.proname = 'create_trigger' AS creates, acl.grantee::regrole AS grantee
        FROM pg_proc AS function CROSS JOIN LATERAL aclexplode(function.proacl) AS acl
        WHERE function.pronamespace = 'fastapi_pg_sse'::regnamespace
            AND (function.proname IN ('emit', 'emit_many')
                OR function.oid = 'fastapi_pg_sse.create_trigger(text, regclass, text, text, text[])'::regprocedure)
            AND acl.privilege_type = 'EXECUTE' AND acl.grantee <> 0 AND acl.grantee <> function.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', CASE WHEN grant_.creates
            THEN 'fastapi_pg_sse.create_trigger(text, regclass, text, text, text[], text)'
            ELSE 'fastapi_pg_sse.emit_to_group(text, text, text, jsonb, text),'
                ' fastapi_pg_sse.emit_to_groups(text, text[], text[], jsonb[], text),'
                ' fastapi_pg_sse.broadcast(text, text, jsonb, text),'
                ' fastapi_pg_sse.broadcast_many(text, text[], jsonb[], text)' END, grant_.grantee);
    END LOOP;
END;
$$;
DROP FUNCTION fastapi_pg_sse.create_trigger(text, regclass, text, text, text[]);

INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.4');
