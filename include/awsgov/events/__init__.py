"""Event-based monitoring: ingest of the central bus's events, account activity, immediate event alerts."""
