-- fastapi-pg-sse schema 1.5, as 1.0.sql to 1.5.sql make it (their comments say why).
CREATE SCHEMA fastapi_pg_sse;
-- The versions applied to this database, each recorded by its own migration.
CREATE TABLE fastapi_pg_sse.migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
-- Every committed event, for replay; ids follow commit order (see commit_events).
-- type: not those streams send themselves; traceparent: of the span current where it was emitted, if any;
-- target_group: of an event to a group (target_user_id ''); both '': to everyone.
CREATE TABLE fastapi_pg_sse.events (id bigint PRIMARY KEY, channel text NOT NULL, target_user_id text NOT NULL,
    type text NOT NULL CHECK (type NOT IN ('reset', 'expired')), payload jsonb NOT NULL, created_at timestamptz NOT NULL,
    xact_id xid8 NOT NULL, traceparent text, target_group text NOT NULL DEFAULT '');
CREATE INDEX events_audience_idx ON fastapi_pg_sse.events (channel, target_user_id, target_group, id);
CREATE INDEX events_prune_idx ON fastapi_pg_sse.events (channel, created_at);
CREATE SEQUENCE fastapi_pg_sse.event_ids AS bigint OWNED BY fastapi_pg_sse.events.id;
-- How far back a client of a channel (target_user_id '') or of one user may resume without a reset.
CREATE TABLE fastapi_pg_sse.pruned (channel text NOT NULL, target_user_id text NOT NULL DEFAULT '', through_id bigint NOT NULL, PRIMARY KEY (channel, target_user_id));
CREATE INDEX pruned_through_idx ON fastapi_pg_sse.pruned (through_id);
-- Events emitted by transactions still running, with the columns of events known before the commit. Unlogged: what a crash loses never committed.
CREATE UNLOGGED TABLE fastapi_pg_sse.pending_events (xact_id xid8 NOT NULL DEFAULT pg_current_xact_id(), position bigint GENERATED ALWAYS AS IDENTITY,
    channel text NOT NULL, target_user_id text NOT NULL, type text NOT NULL, payload jsonb NOT NULL, traceparent text, target_group text NOT NULL DEFAULT '');
CREATE INDEX pending_events_xact_idx ON fastapi_pg_sse.pending_events (xact_id);
-- One row per transaction with pending events, whose deferred trigger commits them.
CREATE UNLOGGED TABLE fastapi_pg_sse.pending_commits (xact_id xid8 PRIMARY KEY);
-- Never written: committing transactions lock it in turn, so that their ids follow commit order.
CREATE TABLE fastapi_pg_sse.commit_order ();
-- Events of poll-delivery sessions (fastapi_pg_sse.delivery 'poll'), committed or not, that sequence_queued numbers.
CREATE TABLE fastapi_pg_sse.queued_events (xact_id xid8 NOT NULL DEFAULT pg_current_xact_id(), position bigint GENERATED ALWAYS AS IDENTITY,
    channel text NOT NULL, target_user_id text NOT NULL, type text NOT NULL, payload jsonb NOT NULL, traceparent text, target_group text NOT NULL DEFAULT '');

-- Why an event cannot be emitted, or NULL if it can.
CREATE FUNCTION fastapi_pg_sse.event_problem(channel text, target_user_id text, event_type text) RETURNS text LANGUAGE sql IMMUTABLE
RETURN CASE
    WHEN channel IS NULL OR channel !~ '^[a-z][a-z0-9_]*$' OR octet_length(channel) > 53 THEN 'channel must be a lowercase SQL identifier of at most 53 bytes, got ' || quote_nullable(channel)
    WHEN target_user_id IS NULL OR target_user_id = '' OR target_user_id ~ '[\r\n]' THEN 'target_user_id must be a non-empty single line, got ' || quote_nullable(target_user_id)
    WHEN octet_length(target_user_id) > 1024 THEN 'target_user_id must be at most 1024 bytes, got ' || octet_length(target_user_id)
    WHEN event_type IS NULL OR event_type !~ '^[A-Za-z][A-Za-z0-9_.:-]*$' THEN 'event_type must be a word such as stock_updated, got ' || quote_nullable(event_type)
    WHEN event_type IN ('reset', 'expired', 'revoked') THEN 'event_type ' || event_type || ' is reserved: streams send it themselves'
END;
-- Why a traceparent (00-<32 hex>-<16 hex>-<2 hex>, or NULL for none) cannot be stored, or NULL if it can.
CREATE FUNCTION fastapi_pg_sse.traceparent_problem(traceparent text) RETURNS text LANGUAGE sql IMMUTABLE
RETURN CASE WHEN traceparent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN 'traceparent must be a W3C traceparent such as 00-<32 hex digits>-<16 hex digits>-01, got ' || quote_literal(left(traceparent, 100)) END;
-- Records events in the caller's transaction, in the order given, each checked, numbered and announced as it commits
-- (commit_events), or queued if the session's fastapi_pg_sse.delivery is 'poll' (sequence_queued numbers them):
-- to the user each target names, the group each names, or, targets NULL, to every stream of the channel.
CREATE FUNCTION fastapi_pg_sse.record(channel text, audience text, targets text[], event_types text[], payloads jsonb[], traceparent text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := fastapi_pg_sse.traceparent_problem(traceparent);
    label text := CASE audience WHEN 'user' THEN 'target_user_id' ELSE 'target_group' END;
    queue boolean := coalesce(current_setting('fastapi_pg_sse.delivery', true) = 'poll', false);
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
    WITH addressed AS MATERIALIZED (  -- an unknown audience: NULL, refused
        SELECT CASE audience WHEN 'user' THEN given.target WHEN 'group' THEN '' WHEN 'everyone' THEN '' END AS to_user,
            CASE audience WHEN 'group' THEN given.target ELSE '' END AS to_group,
            given.event_type AS of_type, coalesce(given.payload, 'null'::jsonb) AS body, given.position
        FROM unnest(targets, event_types, payloads) WITH ORDINALITY AS given (target, event_type, payload, position)
    ), queued AS (  -- numbered by sequence_queued, after the commit
        INSERT INTO fastapi_pg_sse.queued_events (channel, target_user_id, target_group, type, payload, traceparent)
            SELECT record.channel, to_user, to_group, of_type, body, record.traceparent FROM addressed WHERE queue ORDER BY addressed.position
    )
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, target_group, type, payload, traceparent)
        SELECT record.channel, to_user, to_group, of_type, body, record.traceparent FROM addressed WHERE NOT queue ORDER BY addressed.position;
    IF NOT queue THEN INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING; END IF;
END;
$$;

-- An event to a user, a group (named as a user id is) or every stream of the channel, delivered once the
-- caller's transaction commits; waits for no emitter. The four-argument emit and emit_many record no trace.
CREATE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb, traceparent text) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'user', ARRAY[target_user_id], ARRAY[event_type], ARRAY[payload], traceparent);
CREATE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.emit(channel, target_user_id, event_type, payload, NULL::text);
CREATE FUNCTION fastapi_pg_sse.emit_to_group(channel text, target_group text, event_type text, payload jsonb, traceparent text DEFAULT NULL) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'group', ARRAY[target_group], ARRAY[event_type], ARRAY[payload], traceparent);
CREATE FUNCTION fastapi_pg_sse.broadcast(channel text, event_type text, payload jsonb, traceparent text DEFAULT NULL) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'everyone', NULL, ARRAY[event_type], ARRAY[payload], traceparent);
-- Many events in one statement, in the order given, each to its user, to its group, or to everyone.
CREATE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[], traceparent text) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'user', target_user_ids, event_types, payloads, traceparent);
CREATE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[]) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.emit_many(channel, target_user_ids, event_types, payloads, NULL::text);
CREATE FUNCTION fastapi_pg_sse.emit_to_groups(channel text, target_groups text[], event_types text[], payloads jsonb[], traceparent text DEFAULT NULL) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'group', target_groups, event_types, payloads, traceparent);
CREATE FUNCTION fastapi_pg_sse.broadcast_many(channel text, event_types text[], payloads jsonb[], traceparent text DEFAULT NULL) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.record(channel, 'everyone', NULL, event_types, payloads, traceparent);

-- Ends the user's open streams in every process once it commits: a row on channel fastapi_pg_sse.revoked.
CREATE FUNCTION fastapi_pg_sse.disconnect(target_user_id text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF fastapi_pg_sse.event_problem('revoked', target_user_id, 'disconnect') IS NOT NULL THEN  -- the user id, as emit checks it
        RAISE EXCEPTION USING MESSAGE = fastapi_pg_sse.event_problem('revoked', target_user_id, 'disconnect'), ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload)
        VALUES ('fastapi_pg_sse.revoked', target_user_id, 'revoked', '{"reason": "revoked"}');
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;
-- At commit: numbers the transaction's events after every id committed before; NOTIFYs `<id> <channel> <user>`, or `\n<group>`.
CREATE FUNCTION fastapi_pg_sse.commit_events() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
CREATE CONSTRAINT TRIGGER commit_events AFTER INSERT ON fastapi_pg_sse.pending_commits DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fastapi_pg_sse.commit_events();
-- Numbers every queued event it sees, after every id committed before, in the turn commit_events
-- takes (commit_order), so that ids follow commit order for every reader; returns how many.
CREATE FUNCTION fastapi_pg_sse.sequence_queued() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sequenced bigint;
    committed_at timestamptz;
BEGIN
    IF NOT EXISTS (SELECT FROM fastapi_pg_sse.queued_events) THEN RETURN 0; END IF;  -- no turn taken for nothing
    LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE;
    committed_at := clock_timestamp();
    WITH moved AS (DELETE FROM fastapi_pg_sse.queued_events RETURNING *)
    INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, target_group, type, payload, created_at, xact_id, traceparent)
        SELECT nextval('fastapi_pg_sse.event_ids'), channel, target_user_id, target_group, type, payload, committed_at, xact_id, traceparent
        FROM moved ORDER BY xact_id, position;
    GET DIAGNOSTICS sequenced = ROW_COUNT;
    RETURN sequenced;
END;
$$;

-- Deletes the channel's events committed longer than `keep` ago; returns how many.
CREATE FUNCTION fastapi_pg_sse.prune(channel text, keep interval) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint;
    through_id bigint;
BEGIN
    WITH gone AS (
        DELETE FROM fastapi_pg_sse.events AS event
            WHERE event.channel = prune.channel AND event.created_at < now() - keep
            RETURNING event.id
    )
    SELECT count(*), max(id) INTO deleted, through_id FROM gone;
    IF deleted > 0 THEN
        PERFORM fastapi_pg_sse.continue_after(channel, through_id);
    END IF;
    RETURN deleted;
END;
$$;
-- Makes the channel's (or one user's) clients resume from `last_id` on: older ids get a reset.
CREATE FUNCTION fastapi_pg_sse.continue_after(channel text, last_id bigint, target_user_id text DEFAULT '') RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE;
    INSERT INTO fastapi_pg_sse.pruned AS horizon VALUES (channel, target_user_id, last_id)
        ON CONFLICT ON CONSTRAINT pruned_pkey
        DO UPDATE SET through_id = greatest(horizon.through_id, excluded.through_id);
    PERFORM setval('fastapi_pg_sse.event_ids', last_id)
        FROM fastapi_pg_sse.event_ids AS ids
        WHERE CASE WHEN ids.is_called THEN ids.last_value ELSE ids.last_value - 1 END < last_id;
END;
$$;
-- create_trigger's `user_column`: a column, or `<fk_column>.<user_column>` through a foreign key.
CREATE FUNCTION fastapi_pg_sse.user_path(on_table regclass, user_column text) RETURNS text[] LANGUAGE sql STABLE
RETURN CASE WHEN strpos(user_column, '.') = 0 OR EXISTS (SELECT FROM pg_catalog.pg_attribute AS attribute
        WHERE attribute.attrelid = on_table AND attribute.attname = user_column AND attribute.attnum > 0 AND NOT attribute.attisdropped)
    THEN ARRAY[user_column] ELSE ARRAY[split_part(user_column, '.', 1), substr(user_column, strpos(user_column, '.') + 1)] END;
-- The SQL that reads the user of a row `changed` (see user_path); refuses a path that leads nowhere.
CREATE FUNCTION fastapi_pg_sse.recipient(channel text, on_table regclass, user_column text) RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- The triggers of create_trigger: one bulk emit per statement, to each changed row's user, or its group (`group:<column>`).
CREATE FUNCTION fastapi_pg_sse.emit_changes() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- Emits the channel's events from a table's changes (three triggers), to each row's user or group; refuses a missing column.
CREATE FUNCTION fastapi_pg_sse.create_trigger(channel text, on_table regclass, user_column text DEFAULT NULL, event_prefix text DEFAULT NULL, columns text[] DEFAULT NULL, group_column text DEFAULT NULL) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- Drops the triggers create_trigger made.
CREATE FUNCTION fastapi_pg_sse.drop_trigger(channel text, on_table regclass) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    operation text;
BEGIN
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', channel || '_on_' || operation, on_table);
    END LOOP;
END;
$$;
-- The triggers create_trigger made, as it was called (one row per table and channel).
CREATE VIEW fastapi_pg_sse.triggers AS SELECT argument[1] AS channel, trigger.tgrelid::regclass AS on_table,
        CASE WHEN argument[2] NOT LIKE 'group:%' THEN argument[2] END AS user_column, argument[3] AS event_prefix,
        nullif(argument[4:cardinality(argument) - 1], '{}') AS columns, CASE WHEN argument[2] LIKE 'group:%' THEN substr(argument[2], 7) END AS group_column
    FROM pg_trigger AS trigger CROSS JOIN LATERAL (SELECT array_agg(convert_from(decode(part, 'escape'), 'UTF8') ORDER BY number)
        FROM unnest(string_to_array(encode(trigger.tgargs, 'escape'), '\000')) WITH ORDINALITY AS parts (part, number)) AS arguments (argument)
    WHERE trigger.tgfoid = 'fastapi_pg_sse.emit_changes'::regproc AND trigger.tgtype & 4 <> 0;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse FROM PUBLIC;
INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.5');
