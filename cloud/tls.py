"""Ingest's TLS certificate, followed on disk: renewing it is writing the new files.

gRPC asks ``CertificateFiles.fetch`` at every new TLS handshake
(``grpc.dynamic_ssl_server_credentials``); when the certificate, key or client CA files
changed, the new pair is read, checked (the key must match the certificate) and served to
new connections, while open streams keep theirs. A pair that does not load (a renewal
half written: the new certificate beside the old key) is logged once, counted, and the
last good pair stays in service until the files change again. ``cryptography`` reads the
expiry date for the metric and the check; the standard library cannot parse a PEM
certificate without a private API.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import Counter, Gauge

from cloud.config import TlsSettings
from locowatch.errors import UsageError
from locowatch.files import Stamp, stamp

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0  # handshakes within a second share one look at the files

EXPIRY_DAYS = Gauge(
    "locowatch_ingest_tls_certificate_expiry_days",
    "Days until the certificate ingest serves expires (negative: expired). Alert below 14.",
)
NOT_AFTER = Gauge(
    "locowatch_ingest_tls_certificate_not_after_timestamp_seconds",
    "Expiry of the certificate ingest serves, as a Unix time.",
)
RELOADS = Counter(
    "locowatch_ingest_tls_reloads",
    "Certificate files read again after they changed, by outcome (loaded, refused).",
    ["outcome"],
)


@dataclass(frozen=True)
class CertificatePair:
    key: bytes
    chain: bytes
    client_ca: bytes | None
    subject: str
    not_after: datetime

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.key, self.chain)], root_certificates=self.client_ca
        )


def read_pair(tls: TlsSettings) -> CertificatePair:
    """Read and check the files; UsageError saying what is wrong."""
    try:
        key, chain = tls.key_file.read_bytes(), tls.cert_file.read_bytes()
        client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
    except OSError as exc:
        raise UsageError(f"cannot read the TLS files: {exc}") from None
    try:
        certificate = x509.load_pem_x509_certificate(chain)  # the first one: the server's
        private = serialization.load_pem_private_key(key, password=None)
    except ValueError as exc:
        raise UsageError(f"{tls.cert_file} / {tls.key_file}: not a PEM pair: {exc}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(serialization.Encoding.DER, spki) != (
        certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
    ):
        raise UsageError(f"{tls.key_file} is not the key of {tls.cert_file}")
    return CertificatePair(
        key, chain, client_ca, certificate.subject.rfc4514_string(), certificate.not_valid_after_utc
    )


class CertificateFiles:
    """The pair in service, and the credentials that follow its files."""

    def __init__(self, tls: TlsSettings) -> None:
        self.tls = tls
        self.pair = read_pair(tls)  # a bad pair at start is an error, not a silent plaintext
        self._stamp = self._files_stamp()
        self._refused: Stamp | None = None
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        EXPIRY_DAYS.set_function(self.days_left)
        NOT_AFTER.set(self.pair.not_after.timestamp())
        self._warn_if_near()

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.pair.configuration(),
            self.fetch,
            require_client_authentication=self.tls.require_client_cert,
        )

    def days_left(self) -> float:
        return (self.pair.not_after - datetime.now(UTC)).total_seconds() / 86400

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's question at each handshake: a new configuration, or None (keep it)."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked < CHECK_EVERY_S:
                return None
            self._checked = now
            current = self._files_stamp()
            if current in (self._stamp, self._refused):
                return None
            try:
                pair = read_pair(self.tls)
            except UsageError as exc:  # keep serving the last good pair
                self._refused = current
                RELOADS.labels("refused").inc()
                log.error("TLS files changed but not loaded, serving the previous pair: %s", exc)
                return None
            self.pair, self._stamp, self._refused = pair, current, None
            NOT_AFTER.set(pair.not_after.timestamp())
            RELOADS.labels("loaded").inc()
            log.info(
                "TLS certificate reloaded: %s, expires %s",
                pair.subject,
                f"{pair.not_after:%Y-%m-%d}",
            )
            self._warn_if_near()
            return pair.configuration()

    def _warn_if_near(self) -> None:
        days = self.days_left()
        if days < 14:
            log.warning("the TLS certificate %s expires in %.1f days", self.pair.subject, days)

    def _files_stamp(self) -> Stamp:
        files = [self.tls.cert_file, self.tls.key_file]
        return stamp(*files, *([self.tls.client_ca_file] if self.tls.client_ca_file else []))
