"""``locowatch demo``: the whole product on the facility twin, from one command.

The twin's cameras are rendered once to video (cached), then streamed over RTSP as live
cameras into the real edge gateway (``edge run``: capture, aggregator, prod and dev
estimators, uplink), which streams to real cloud ingest with the facility state
estimator on TimescaleDB; the dashboard serves it all. When the run ends, the state in
the database is scored against the twin's ground truth, flow by flow.

``scope`` picks the tracks, cameras and window; ``footage`` renders and caches the video;
``stack`` writes the configs and runs the services; ``status`` is the live status line;
``scoring`` writes the ground truth on the run's clock and scores the run; ``cli`` is the
command.
"""
