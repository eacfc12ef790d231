"""The database URL is a secret until the moment of connecting: no repr or attribute dump of the
kernel or its listener, such as a debugger or an error reporter prints, shows its password."""

from urllib.parse import urlsplit

import pytest

from tests.helpers import running_kernel

pytestmark = pytest.mark.anyio

PASSWORD = "pw-of-the-events-database"
"""Accepted, and ignored, by the test PostgreSQL, which trusts its local connections."""


async def test_neither_the_kernel_nor_its_listener_shows_the_database_password(
    realtime_database_url: str,
) -> None:
    async with running_kernel(_with_password(realtime_database_url)) as realtime:
        assert realtime.listener.connected
        dumps = {
            "the kernel": repr(realtime),
            "the kernel's attributes": repr(vars(realtime)),
            "the listener": repr(realtime.listener),
            "the listener's attributes": repr(vars(realtime.listener)),
        }
    assert [shown for shown, dump in dumps.items() if PASSWORD in dump] == []


def _with_password(database_url: str) -> str:
    url = urlsplit(database_url)
    host = url.netloc.rpartition("@")[2]  # empty for a Unix socket, named by `?host=`
    return url._replace(netloc=f"{url.username or 'postgres'}:{PASSWORD}@{host}").geturl()
