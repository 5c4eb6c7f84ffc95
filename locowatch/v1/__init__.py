"""The locowatch.v1 wire messages and gRPC services.

Generated from ``protos/locowatch/v1/*.proto`` by ``python protos/generate.py``; do not
edit the ``*_pb2*`` modules by hand (a test fails when they are stale).
"""
