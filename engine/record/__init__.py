"""The record a firm shows a regulator: checked against its own trail and anchored outside the database.

- :mod:`engine.record.replay`: the stored rows compared with what the audit trail implies.
- :mod:`engine.record.continuity`: incident numbers without gaps (purged ones leave a tombstone).
- :mod:`engine.record.holds`: an incident whose trail was found broken takes no write until acknowledged.
"""
