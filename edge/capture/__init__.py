"""The capture service: one worker per camera, the latest frame to the aggregator.

``sources`` opens a camera by its config string (RTSP/HTTP, a video file, ``sim://``)
behind one small interface; ``worker.CameraWorker`` keeps one camera streaming (backoff,
watchdog, frame rate, latest-frame-wins, health); ``service.run_capture`` runs a worker
per camera with a frame sender each and one health publisher, behind the edge gRPC
server. ``python -m edge.capture --config FILE`` runs it as its own process.
"""
