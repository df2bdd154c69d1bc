"""The read-only dashboard and JSON API (``breach serve``): pages and endpoints over the read model,
behind a token guard."""
