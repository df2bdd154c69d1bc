"""Notices to every affected person: people, content, contexts, rendering, delivery and its record."""
