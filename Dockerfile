# Image for docker-compose.yaml: the official Airflow image at the pinned version plus our pinned requirements
# (constraints.txt: the exact set the tests ran with). The sandbox's moto is a test tool and stays out of it.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/awsgov/
RUN grep -v '^moto' /opt/awsgov/requirements.txt > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt -c /opt/awsgov/constraints.txt \
    && rm /tmp/requirements.txt
# The default store (settings store_url data/store, cwd /opt/airflow) lives on the awsgov-data volume.
RUN mkdir -p /opt/airflow/data
