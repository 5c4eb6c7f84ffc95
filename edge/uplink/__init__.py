"""The edge uplink: store and forward every estimation to cloud ingest.

Estimators and capture ``Publish`` envelopes to this service; it numbers them and commits
them to a durable queue on disk (``queue.py``) before it answers, and a forwarder thread
(``forwarder.py``) streams them to cloud ingest, deleting each only when ingest acks it.
``conversation.py`` is the protocol itself (batches, window, acks, refusals), shared with
the twin's simulated gateway. ``service.py`` wires them into one process:
``python -m edge.uplink --config facility.yaml``.
"""
