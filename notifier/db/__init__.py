"""Persistence: SQLAlchemy models and the store, the only place that opens sessions."""
