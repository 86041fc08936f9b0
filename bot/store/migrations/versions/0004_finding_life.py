"""the life of a finding: cited range and text kept for re-checks, repository dismissals, commands by thread

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table('dismissals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('repo', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=128), nullable=False),
    sa.Column('pr', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('by_user', sa.String(length=100), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dismissals')),
    sa.UniqueConstraint('repo', 'fingerprint', name=op.f('uq_dismissals_repo_fingerprint'))
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('start_line', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
    with op.batch_alter_table('command_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_id', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_command_log_thread_id', ['thread_id'], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table('command_log', schema=None) as batch_op:
        batch_op.drop_index('ix_command_log_thread_id')
        batch_op.drop_column('thread_id')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_column('body')
        batch_op.drop_column('start_line')
    op.drop_table('dismissals')
