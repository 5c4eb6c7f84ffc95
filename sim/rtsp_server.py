"""A real RTSP server for the twin's cameras: GStreamer's gst-rtsp-server.

Run with Debian's system Python, which has the GStreamer bindings (python3-gi,
gir1.2-gst-rtsp-server-1.0); it imports nothing of locowatch::

    /usr/bin/python3 sim/rtsp_server.py --port 8554 cam-01=5601 cam-02=5602

Each ``name=port`` pair publishes ``rtsp://HOST:PORT/name`` fed by an RTP stream of
H.264 (payload type 96) arriving on UDP ``127.0.0.1:port`` (what ``locowatch sim serve`` sends with
ffmpeg). The media is shared: one pipeline per camera whatever the number of clients.
When the feed stops (a camera dropout), clients stop receiving frames, as with a stalled
IP camera; when it resumes, so do they. With ``LOGIN_ENV`` set to ``user:password`` in its
environment (not on the command line, where every user of the machine can read it), every
stream asks for that login (RTSP basic auth), as an IP camera does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# RTP in, not MPEG-TS: a TS demuxer only knows a frame has ended when the next one starts,
# which at 2 fps held every frame back 0.5 s on each of its two hops; RTP's marker bit ends
# a frame at once, as a camera's own RTP does.
PIPELINE = (
    "( udpsrc port={port} address=127.0.0.1 buffer-size=4194304 "
    'caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96" '
    "! rtph264depay ! h264parse config-interval=-1 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
LOGIN_ENV = "LOCOWATCH_RTSP_LOGIN"
ROLE = "camera-viewer"


def require_login(server: GstRtspServer.RTSPServer, login: str) -> GstRtspServer.RTSPPermissions:
    """Basic auth on the server; the permissions each stream must carry to be seen."""
    user, _, password = login.partition(":")
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(ROLE, "media.factory.access", True)
    permissions.add_permission_for_role(ROLE, "media.factory.construct", True)
    return permissions


def main() -> int:
    parser = argparse.ArgumentParser(description="RTSP server for the locowatch twin")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("streams", nargs="+", metavar="NAME=UDP_PORT")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    # One thread per client connection (the default pool has one thread, so a client whose
    # stream is still being prepared held up every other camera's RTSP handshake).
    pool = GstRtspServer.RTSPThreadPool()
    pool.set_max_threads(max(16, 2 * len(args.streams)))
    server.set_thread_pool(pool)
    login = os.environ.get(LOGIN_ENV)
    permissions = require_login(server, login) if login else None
    mounts = server.get_mount_points()
    for spec in args.streams:
        name, _, port = spec.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(PIPELINE.format(port=int(port)))
        factory.set_shared(True)
        if permissions is not None:
            factory.set_permissions(permissions)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    guarded = " (login required)" if login else ""
    print(
        f"rtsp server on {args.address}:{args.port}: {len(args.streams)} streams{guarded}",
        flush=True,
    )
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
