"""Daily collection: the runner and one module per source (Trusted Advisor, Config, GuardDuty, Macie, SSM inventory)."""
