"""reconciliation with GitHub: task leases and progress, redelivery requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table('reconcile_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', sa.Float(), nullable=True),
    sa.Column('checkpoint', sa.String(length=64), nullable=True),
    sa.Column('scan_cursor', sa.String(length=200), nullable=True),
    sa.Column('scan_top', sa.String(length=64), nullable=True),
    sa.Column('last_started_at', sa.Float(), nullable=True),
    sa.Column('last_finished_at', sa.Float(), nullable=True),
    sa.Column('last_summary', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_reconcile_state'))
    )
    op.create_table('redelivery_requests',
    sa.Column('guid', sa.String(length=64), nullable=False),
    sa.Column('github_delivery_id', sa.BigInteger(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('guid', name=op.f('pk_redelivery_requests'))
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table('redelivery_requests')
    op.drop_table('reconcile_state')
