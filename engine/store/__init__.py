"""The database: engines and sessions on SQLite or PostgreSQL, and the fast read model."""
