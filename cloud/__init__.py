"""Cloud side: gRPC ingest, the facility state estimator, TimescaleDB schema and reports.

Data flows one way: envelopes from gateways are validated (``validation``) into records
(``records``), written durably (``store``), then fused into facility state (``fse``)
whose snapshots and events are written back. ``ingest`` is the gRPC service, ``server``
assembles a running process, ``reports`` reads the reporting views.
"""
