"""Alembic migrations of the breach schema; ``engine.migrate`` runs them."""
