"""The cloud side: gRPC ingest -> facility state estimator (fusion) -> TimescaleDB.

Built by the «Cloud» issue (``ingest.py``, ``fusion.py``, ``store/`` with migrations).
"""
