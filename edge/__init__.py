"""The edge gateway: capture -> aggregator -> estimators -> uplink, one process each.

Built by the «Edge services» issue; each service gets its own module here
(``capture.py``, ``aggregator.py``, ``estimators/``, ``uplink.py``) and a short ``main``.
"""
