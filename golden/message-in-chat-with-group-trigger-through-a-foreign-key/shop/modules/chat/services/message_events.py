# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Message events of the chat module: the trigger on messages sends message_created,
_updated and _deleted events, a row as `MessagesRow` declares it (keep it in step with the table);
declare the events you emit yourself here too, and add them to `MessageEvent`."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class MessagesRow(ChannelEvent):
    """A row of messages as the trigger sends it (every column of messages)."""

    id: int
    room_id: int
    body: str


class MessageCreated(MessagesRow):
    """A row of messages was inserted: the new row."""

    event_type: ClassVar[str] = "message_created"


class MessageUpdated(MessagesRow):
    """A row of messages was updated: the row as it is now."""

    event_type: ClassVar[str] = "message_updated"


class MessageDeleted(MessagesRow):
    """A row of messages was deleted: the row as it was."""

    event_type: ClassVar[str] = "message_deleted"


MessageEvent = MessageCreated | MessageUpdated | MessageDeleted
"""Every event of the channel: add those you emit yourself with `|`."""
