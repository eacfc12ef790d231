"""`insert_row` builds a valid row of a real table from PostgreSQL's catalog, or says which file
should insert it by hand."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from fastapi_pg_sse.testing import RowNotBuilt, insert_row
from tests.helpers import in_a_schema_of_its_own

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(realtime_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose tables go to a schema of the test's own."""
    async with in_a_schema_of_its_own(realtime_database_url) as connection:
        yield connection


async def test_a_row_gets_a_valid_value_for_each_column_that_needs_one(
    database: asyncpg.Connection,
) -> None:
    await database.execute(
        """
        CREATE TYPE order_status AS ENUM ('pending', 'paid');
        CREATE DOMAIN cents AS integer NOT NULL CHECK (VALUE > 0);
        CREATE TABLE customers (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            email varchar(12) NOT NULL UNIQUE,
            country char(2) NOT NULL
        );
        CREATE TABLE orders (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            customer_id bigint NOT NULL REFERENCES customers,
            status order_status NOT NULL,
            sold_through text NOT NULL CHECK (sold_through IN ('web', 'shop')),
            total cents,
            total_with_tax numeric GENERATED ALWAYS AS (total * 1.2) STORED,
            placed_at timestamptz NOT NULL,
            ships_on date NOT NULL,
            reference uuid NOT NULL,
            details jsonb NOT NULL,
            tags text[] NOT NULL,
            gift boolean NOT NULL,
            note text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )
    order = await insert_row(database, "orders")
    customer = await database.fetchrow("SELECT * FROM customers")
    assert customer is not None and order["customer_id"] == customer["id"]
    assert len(customer["email"]) <= 12 and len(customer["country"]) == 2
    assert (order["status"], order["sold_through"], order["note"]) == ("pending", "web", None)
    assert order["total"] > 0 and order["total_with_tax"] is not None


async def test_a_foreign_key_to_a_nullable_unique_column_gets_a_referenced_row_with_that_key(
    database: asyncpg.Connection,
) -> None:
    await database.execute(
        """
        CREATE TABLE accounts (email text UNIQUE, region text NOT NULL CHECK (region <> 'moon'));
        CREATE TABLE invoices (account_email text NOT NULL REFERENCES accounts (email));
        """
    )
    invoice = await insert_row(database, "invoices")
    account = await database.fetchrow("SELECT * FROM accounts")
    assert account is not None and invoice["account_email"] == account["email"]
    assert account["region"] != "moon", "a CHECK that is no list of values names no value"


async def test_columns_to_fill_get_a_value_even_when_nullable(database: asyncpg.Connection) -> None:
    await database.execute("CREATE TABLE notes (owner_id text, body text)")
    note = await insert_row(database, "notes", fill=["owner_id"])
    assert note["owner_id"] and note["body"] is None


async def test_a_user_column_that_references_users_gets_a_new_user(
    database: asyncpg.Connection,
) -> None:
    await database.execute(
        """
        CREATE TABLE users (id uuid PRIMARY KEY, name text NOT NULL);
        CREATE TABLE baskets (id serial PRIMARY KEY, user_id uuid REFERENCES users);
        """
    )
    basket = await insert_row(database, "baskets", fill=["user_id"])
    assert await database.fetchval("SELECT id FROM users") == basket["user_id"]


async def test_a_path_fills_a_column_of_the_new_row_its_foreign_key_references(
    database: asyncpg.Connection,
) -> None:
    """A trigger's user column through a foreign key, `article_id.author_id`: the comment
    references a new article whose author is a new user."""
    await database.execute(
        """
        CREATE TABLE articles (id serial PRIMARY KEY, author_id uuid, title text NOT NULL);
        CREATE TABLE comments (
            id serial PRIMARY KEY, article_id int REFERENCES articles, body text
        );
        """
    )
    comment = await insert_row(database, "comments", fill=["article_id.author_id"])
    article = await database.fetchrow("SELECT * FROM articles")
    assert article is not None and comment["article_id"] == article["id"]
    assert article["author_id"] is not None and article["title"]
    assert comment["body"] is None


async def test_a_path_whose_user_references_users_gets_a_new_user_behind_a_new_article(
    database: asyncpg.Connection,
) -> None:
    """Two levels of new rows in one statement: the comment's article, and that article's author
    in users (FastAPI's full-stack template has `article.author_id REFERENCES "user"`)."""
    await database.execute(
        """
        CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL UNIQUE);
        CREATE TABLE articles (
            id serial PRIMARY KEY, author_id uuid NOT NULL REFERENCES users, title text NOT NULL
        );
        CREATE TABLE comments (
            id serial PRIMARY KEY, article_id int NOT NULL REFERENCES articles, body text NOT NULL
        );
        """
    )
    comment = await insert_row(database, "comments", fill=["article_id.author_id"])
    author = await database.fetchval(
        "SELECT users.id FROM articles JOIN users ON users.id = articles.author_id"
        " WHERE articles.id = $1",
        comment["article_id"],
    )
    assert author is not None


@pytest.mark.parametrize(
    ("fill", "why"),
    [
        ("body.author_id", "column body is not the single column of a foreign key"),
        ("artcle_id.author_id", "it has no column artcle_id"),
    ],
)
async def test_a_path_whose_first_column_is_no_foreign_key_is_refused(
    database: asyncpg.Connection, fill: str, why: str
) -> None:
    await database.execute("CREATE TABLE comments (id serial PRIMARY KEY, body text)")
    with pytest.raises(RowNotBuilt) as refused:
        await insert_row(database, "comments", fill=[fill])
    assert str(refused.value) == (
        f"cannot build a row of comments: {why}; insert the row yourself in {__file__}"
    )


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ("CREATE TABLE places (at point NOT NULL)", "column at has type point"),
        ("CREATE TABLE nodes (id int PRIMARY KEY, up int NOT NULL REFERENCES nodes)", "cycle"),
        ("CREATE TABLE crates (size int NOT NULL CHECK (size > 5))", "PostgreSQL refused"),
    ],
    ids=["unknown-type", "foreign-key-cycle", "refused-by-a-check"],
)
async def test_a_row_it_cannot_build_names_the_file_to_edit(
    database: asyncpg.Connection, schema: str, why: str
) -> None:
    await database.execute(schema)
    table = schema.split()[2]
    with pytest.raises(RowNotBuilt, match=why) as refused:
        await insert_row(database, table)
    assert str(refused.value).endswith(f"insert the row yourself in {__file__}")
    assert await database.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_a_row_it_cannot_build_says_the_remedy_it_was_given(
    database: asyncpg.Connection,
) -> None:
    await database.execute("CREATE TABLE places (at point NOT NULL)")
    with pytest.raises(RowNotBuilt) as refused:
        await insert_row(database, "places", remedy="see the row factory of conftest.py")
    assert str(refused.value) == (
        "cannot build a row of places: column at has type point; see the row factory of conftest.py"
    )
