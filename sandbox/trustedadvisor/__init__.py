"""trustedadvisor extension: the Trusted Advisor API (2022-09-15) organization view; moto has no such service."""
