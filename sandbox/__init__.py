"""A local emulated AWS Organization: moto in server mode plus an extension for what moto lacks.

A demo and test tool, never imported by product code (``include/``, ``dags/``). Product code reaches it only
through boto3 with ``endpoint_url=http://127.0.0.1:PORT``. Start it with ``python -m sandbox start`` or
``sandbox.runner.Sandbox``.
"""
