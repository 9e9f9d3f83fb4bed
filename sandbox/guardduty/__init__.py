"""guardduty extension: detectors seeded in moto, findings per account, region and day, delegated administrator."""
