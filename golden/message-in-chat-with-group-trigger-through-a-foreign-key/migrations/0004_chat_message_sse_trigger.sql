-- Written by scaffold. Migrations are history: scaffold never rewrites this one.
-- Message events of the chat module (/chat/events/message/stream), from messages:
-- message_created, _updated and _deleted, to the members of the group in the team_id of the row that each changed row's room_id references, carrying every column of messages.
SELECT fastapi_pg_sse.create_trigger(
    'chat_message', 'messages', group_column => 'room_id.team_id', event_prefix => 'message'
);
