"""Results: the data every report is drawn from (``results.json`` is the source of truth)."""
