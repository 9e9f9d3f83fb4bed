"""cloudformation extension."""
