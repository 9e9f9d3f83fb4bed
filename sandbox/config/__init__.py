"""config extension."""
