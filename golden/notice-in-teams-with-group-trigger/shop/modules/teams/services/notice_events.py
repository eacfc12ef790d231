# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Notice events of the teams module: the trigger on notices sends notice_created,
_updated and _deleted events, a row as `NoticesRow` declares it (keep it in step with the table);
declare the events you emit yourself here too, and add them to `NoticeEvent`."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class NoticesRow(ChannelEvent):
    """A row of notices as the trigger sends it (every column of notices)."""

    id: int
    team_id: str
    body: str


class NoticeCreated(NoticesRow):
    """A row of notices was inserted: the new row."""

    event_type: ClassVar[str] = "notice_created"


class NoticeUpdated(NoticesRow):
    """A row of notices was updated: the row as it is now."""

    event_type: ClassVar[str] = "notice_updated"


class NoticeDeleted(NoticesRow):
    """A row of notices was deleted: the row as it was."""

    event_type: ClassVar[str] = "notice_deleted"


NoticeEvent = NoticeCreated | NoticeUpdated | NoticeDeleted
"""Every event of the channel: add those you emit yourself with `|`."""
