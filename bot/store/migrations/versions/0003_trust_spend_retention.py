"""spend ledger, replay hashes, one command per comment, retention indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table('spend',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('repo', sa.String(length=200), nullable=False),
    sa.Column('pr', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('job_id', sa.BigInteger(), nullable=True),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cache_read_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cache_write_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend'))
    )
    with op.batch_alter_table('spend', schema=None) as batch_op:
        batch_op.create_index('ix_spend_owner_at', ['owner', 'at'], unique=False)
        batch_op.create_index('ix_spend_repo_pr_at', ['repo', 'pr', 'at'], unique=False)
        batch_op.create_index('ix_spend_owner_author_at', ['owner', 'author', 'at'], unique=False)
        batch_op.create_index('ix_spend_at', ['at'], unique=False)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_sha256', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_deliveries_body_sha256', ['body_sha256'], unique=False)
        batch_op.create_index('ix_deliveries_received_at', ['received_at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_finished_at', ['finished_at'], unique=False)

    with op.batch_alter_table('pr_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.Float(), nullable=True))
        batch_op.create_index('ix_pr_state_closed_at', ['closed_at'], unique=False)

    with op.batch_alter_table('command_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comment_id', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_command_log_at', ['at'], unique=False)
        batch_op.create_index('uq_command_log_comment_id', ['comment_id'], unique=True,
                              sqlite_where=sa.text('comment_id IS NOT NULL'),
                              postgresql_where=sa.text('comment_id IS NOT NULL'))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table('command_log', schema=None) as batch_op:
        batch_op.drop_index('uq_command_log_comment_id', sqlite_where=sa.text('comment_id IS NOT NULL'),
                            postgresql_where=sa.text('comment_id IS NOT NULL'))
        batch_op.drop_index('ix_command_log_at')
        batch_op.drop_column('comment_id')
    with op.batch_alter_table('pr_state', schema=None) as batch_op:
        batch_op.drop_index('ix_pr_state_closed_at')
        batch_op.drop_column('closed_at')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_finished_at')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_received_at')
        batch_op.drop_index('ix_deliveries_body_sha256')
        batch_op.drop_column('body_sha256')
    op.drop_table('spend')
