"""Alembic migrations of the breach schema; ``engine.migrations.migrate`` runs them."""
