"""Organizations: moto's, plus the events Organizations logs for account creations and moves."""
