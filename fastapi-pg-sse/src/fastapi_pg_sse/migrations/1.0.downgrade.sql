-- Undoes fastapi-pg-sse schema 1.0: drops every event, and the triggers create_trigger made.
DROP SCHEMA fastapi_pg_sse CASCADE;
