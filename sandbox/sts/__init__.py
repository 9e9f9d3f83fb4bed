"""STS: AssumeRole refuses what AWS refuses (missing role, trust policy or ExternalId mismatch, denied account)."""
