"""macie2 extension: Macie sessions seeded in moto, sensitive-data findings per account, region and day."""
