"""The durable store: SQLAlchemy tables, migrations, deliveries, jobs and the review memory."""
