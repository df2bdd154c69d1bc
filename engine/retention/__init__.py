"""Keeping the record as long as the law asks: evidence bundles (``export``, ``verify``) and purging
after the retention period (``purge``), over the rows of one incident (``incident_rows``)."""
