"""Images on the edge wire (``locowatch.v1.Image``): raw pixels on one host, JPEG or PNG
between hosts. One place encodes and decodes them, so capture, the aggregator and the
estimators agree on what the bytes mean."""

from __future__ import annotations

import cv2
import numpy as np

from locowatch.v1 import frames_pb2

RAW_BGR8 = frames_pb2.IMAGE_ENCODING_RAW_BGR8
RAW_GRAY8 = frames_pb2.IMAGE_ENCODING_RAW_GRAY8
JPEG = frames_pb2.IMAGE_ENCODING_JPEG
PNG = frames_pb2.IMAGE_ENCODING_PNG
JPEG_QUALITY = 90


class ImageError(ValueError):
    """Bytes that are not the image their header says."""


def encode(image: np.ndarray, encoding: frames_pb2.ImageEncoding = RAW_BGR8) -> frames_pb2.Image:
    height, width = image.shape[:2]
    if encoding in (RAW_BGR8, RAW_GRAY8):
        data = np.ascontiguousarray(image, np.uint8).tobytes()
    else:
        ext, params = (
            (".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if encoding == JPEG else (".png", [])
        )
        ok, buffer = cv2.imencode(ext, image, params)
        if not ok:
            raise ImageError(f"cannot encode a {width}x{height} image")
        data = buffer.tobytes()
    return frames_pb2.Image(encoding=encoding, width=width, height=height, data=data)


def decode(message: frames_pb2.Image) -> np.ndarray:
    """The pixels (BGR, or grey for RAW_GRAY8); ImageError when the bytes do not fit."""
    width, height = message.width, message.height
    if message.encoding in (RAW_BGR8, RAW_GRAY8):
        channels = 3 if message.encoding == RAW_BGR8 else 1
        expected = width * height * channels
        if len(message.data) != expected or expected == 0:
            raise ImageError(f"raw image {width}x{height}x{channels}: {len(message.data)} bytes")
        pixels = np.frombuffer(message.data, np.uint8)
        return pixels.reshape((height, width, 3) if channels == 3 else (height, width))
    if message.encoding in (JPEG, PNG):
        image = cv2.imdecode(np.frombuffer(message.data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ImageError("undecodable compressed image")
        if image.shape[:2] != (height, width):
            raise ImageError(
                f"image is {image.shape[1]}x{image.shape[0]}, header says {width}x{height}"
            )
        return np.asarray(image)
    raise ImageError(f"unknown image encoding {message.encoding}")
