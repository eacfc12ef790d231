"""Initialize models

Revision ID: e2412789c190
Revises:
Create Date: 2023-11-24 22:55:43.195942

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "e2412789c190"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE "user" (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            email varchar(255) NOT NULL UNIQUE,
            full_name varchar(255)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE article (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            author_id uuid NOT NULL REFERENCES "user" ON DELETE CASCADE,
            title varchar(255) NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE comment (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            article_id bigint NOT NULL REFERENCES article ON DELETE CASCADE,
            body text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade():
    op.execute("DROP TABLE comment")
    op.execute("DROP TABLE article")
    op.execute('DROP TABLE "user"')
