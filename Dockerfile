# Image for docker-compose.yaml: the official Airflow image at the pinned version plus our requirements.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/awsgov/
RUN pip install --no-cache-dir -r /opt/awsgov/requirements.txt -c /opt/awsgov/constraints.txt \
    "apache-airflow-providers-celery" "apache-airflow-providers-postgres" "apache-airflow-providers-redis"
