"""Formal documents: regulator reports, the bulletin, disciplinary decisions, responsible persons."""
