"""create baskets

Revision ID: bdca26538ef0
Revises:
Create Date: 2026-11-30 10:58:15.267449

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "bdca26538ef0"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "baskets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("stock", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("stock >= 0"),
    )
    op.create_index("baskets_user_id_idx", "baskets", ["user_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("baskets_user_id_idx", table_name="baskets")
    op.drop_table("baskets")
