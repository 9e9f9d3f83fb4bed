"""Installed software: the package query language and the search over collected SSM inventory."""
