"""cloudwatch extension."""
