"""Webhooks: each outbox message POSTed as JSON, signed, with its idempotency key.

Headers: ``Idempotency-Key`` (the message's key: a receiver that stored it once drops a
resend), ``X-Locowatch-Signature: sha256=HEX`` (HMAC-SHA256 of the body with the
webhook's secret; compare in constant time), ``X-Locowatch-Schema``. A 2xx answer is an
acknowledgement; anything else, or no answer, stops the batch there and the service
retries from that message with a growing wait.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence

import requests

from cloud.plant.config import WebhookSettings
from cloud.plant.outbox import OutboxItem

log = logging.getLogger(__name__)


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.name = f"webhook:{settings.name}"
        self._secret = settings.secret.read().encode()
        self._session = requests.Session()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._session.close()

    def deliver(self, items: Sequence[OutboxItem]) -> int | None:
        last: int | None = None
        for item in items:
            if item.kind in self.settings.kinds and not self._post(item):
                break
            last = item.id  # delivered, or of a kind this webhook does not take
        return last

    def _post(self, item: OutboxItem) -> bool:
        body = item.body
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": item.key,
            "X-Locowatch-Signature": signature(self._secret, body),
            "X-Locowatch-Schema": str(item.payload.get("schema", "")),
        }
        try:
            response = self._session.post(
                self.settings.url, data=body, headers=headers, timeout=self.settings.timeout_s
            )
        except requests.RequestException as exc:
            log.warning("%s: %s unreachable: %s", self.name, self.settings.url, exc)
            return False
        if not 200 <= response.status_code < 300:
            log.warning("%s: %s answered %d", self.name, self.settings.url, response.status_code)
            return False
        return True
