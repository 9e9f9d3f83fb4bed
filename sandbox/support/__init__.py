"""support extension."""
