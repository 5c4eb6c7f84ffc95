"""locowatch: see what happens inside a locomotive repair depot through its cameras.

This package is the shared core that the edge (``edge``), the cloud (``cloud``), the
dashboard (``dashboard``) and the facility twin (``sim``) all import: the wire messages
(``locowatch.v1``, generated from ``protos/``), the facility config and geometry
(``locowatch.facility``), database location and the managed TimescaleDB
(``locowatch.db``), logging, and the ``locowatch`` command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("locowatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
