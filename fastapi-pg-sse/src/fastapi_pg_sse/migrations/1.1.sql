-- fastapi-pg-sse schema 1.1: the functions that write events run as the schema's owner, for the
-- roles granted them only (see the README's "Security"), and nobody can emit an event of the
-- types streams send themselves.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse FROM PUBLIC;

-- A role that writes a table with a trigger, or calls emit, needs no right on the schema's tables.
ALTER FUNCTION fastapi_pg_sse.emit(text, text, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION fastapi_pg_sse.emit_many(text, text[], text[], jsonb[]) SECURITY DEFINER;
ALTER FUNCTION fastapi_pg_sse.commit_events() SECURITY DEFINER;
ALTER FUNCTION fastapi_pg_sse.emit_changes() SECURITY DEFINER;
ALTER FUNCTION fastapi_pg_sse.prune(text, interval) SECURITY DEFINER;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.event_problem(channel text, target_user_id text, event_type text)
RETURNS text
LANGUAGE sql
IMMUTABLE
RETURN CASE
    WHEN channel IS NULL OR channel !~ '^[a-z][a-z0-9_]*$' OR octet_length(channel) > 53 THEN
        'channel must be a lowercase SQL identifier of at most 53 bytes, got ' || quote_nullable(channel)
    WHEN target_user_id IS NULL OR target_user_id = '' OR target_user_id ~ '[\r\n]' THEN
        'target_user_id must be a non-empty single line, got ' || quote_nullable(target_user_id)
    WHEN octet_length(target_user_id) > 1024 THEN
        'target_user_id must be at most 1024 bytes, got ' || octet_length(target_user_id)
    WHEN event_type IS NULL OR event_type !~ '^[A-Za-z][A-Za-z0-9_.:-]*$' THEN
        'event_type must be a word such as stock_updated, got ' || quote_nullable(event_type)
    WHEN event_type IN ('reset', 'expired') THEN
        'event_type ' || event_type || ' is reserved: streams send it themselves'
END;

-- Not even the owner can store one. NOT VALID: the events already there are not scanned.
ALTER TABLE fastapi_pg_sse.events ADD CONSTRAINT events_type_check
    CHECK (type NOT IN ('reset', 'expired')) NOT VALID;

INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.1');
