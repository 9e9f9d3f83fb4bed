"""AWS multi-account governance: the domain package behind the DAGs (imports without Airflow)."""
