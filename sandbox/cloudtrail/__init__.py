"""cloudtrail extension: LookupEvents over the seeded configuration changes (and AWS Config's resource history)."""
