"""Playbooks as data: schema, guards, effects, the state machine, the catalog. Pure: no database."""
