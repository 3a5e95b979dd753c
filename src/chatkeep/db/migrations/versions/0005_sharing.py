"""shares, forks, visitor claims, users from external identity providers

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.add_column(sa.Column("forked_from", JSON, nullable=True))
        batch_op.add_column(sa.Column("forked_from_other_user", sa.Boolean(), nullable=True))
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("external_subject", sa.String(length=512), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_users_external_subject"), ["external_subject"])
    op.create_table(
        "shares",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("until_message_id", sa.String(length=128), nullable=False),
        sa.Column("until_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_shares_session_id_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
        sa.UniqueConstraint("session_id", name=op.f("uq_shares_session_id")),
    )
    op.create_table(
        "visitor_claims",
        sa.Column("visitor_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_visitor_claims_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("visitor_id", name=op.f("pk_visitor_claims")),
    )
    op.create_index(op.f("ix_visitor_claims_user_id"), "visitor_claims", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_visitor_claims_user_id"), table_name="visitor_claims")
    op.drop_table("visitor_claims")
    op.drop_table("shares")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(op.f("uq_users_external_subject"), type_="unique")
        batch_op.drop_column("external_subject")
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.drop_column("forked_from_other_user")
        batch_op.drop_column("forked_from")
