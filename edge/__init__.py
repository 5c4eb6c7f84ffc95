"""The edge gateway: capture -> aggregator -> estimators -> uplink, one process each.

capture/      one worker per camera, watchdog and backoff; frames to the aggregator
aggregator/   strips per track view, change gating, crops where the bodies are, fan-out
estimators/   one generic service for position and every attribute (series, plate, ...)
engines/      ONNX Runtime, OpenCV DNN and TensorRT behind one ``infer``
uplink/       durable SQLite queue and the forwarder to cloud ingest
plan.py       which processes a gateway runs, and their ports, from the facility file
service.py    what every service process shares: gRPC, health, reflection, metrics
supervisor.py ``locowatch edge run``: every service as a child process, restarted when it dies
images.py     the wire's images, encoded and decoded in one place

See docs/edge.md.
"""
