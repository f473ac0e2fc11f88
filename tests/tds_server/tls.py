"""TLS for the test server: a generated certificate, TLS inside PRELOGIN packets (TDS 7.x), and TDS 8.0 strict.

In TDS 7.x the TLS handshake records travel as the payload of PRELOGIN packets;
once the handshake is done, TLS records flow directly on the socket and carry the
TDS packets. Microsoft's driver times out at login when the server offers TLS 1.3
there, so that mode is capped at TLS 1.2 (as SQL Server before 2022 is). In TDS
8.0 ("Encrypt=strict") the client starts TLS before any TDS byte, with ALPN
``tds/8.0``. Both run on ``ssl.SSLObject`` over memory BIOs, so one class serves both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import select
import ssl
from dataclasses import dataclass
from pathlib import Path

from .packets import PRELOGIN, Channel, SocketChannel, read_message, write_message

ALPN_TDS8 = "tds/8.0"


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path


def generate_certificate(folder: Path, host: str = "localhost") -> Certificate:
    """A self-signed certificate for ``host`` (and 127.0.0.1), valid for a day, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return Certificate(cert_file, key_file)


def server_context(certificate: Certificate, *, strict: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if strict:
        context.set_alpn_protocols([ALPN_TDS8])
    else:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


class TlsChannel(Channel):
    """TDS over TLS on ``sock``; the handshake is done by ``handshake_in_prelogin`` or ``handshake_strict``."""

    def __init__(self, raw: SocketChannel, context: ssl.SSLContext) -> None:
        self.raw = raw
        self.sock = raw.sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def handshake_in_prelogin(self) -> None:
        """TDS 7.x: each handshake flight arrives and leaves as the payload of PRELOGIN packets."""
        while True:
            message = read_message(self.raw)
            self.incoming.write(message.payload)
            done = self._step()
            flight = self.outgoing.read()
            if flight:
                write_message(self.raw, PRELOGIN, flight)
            if done:
                return

    def handshake_strict(self) -> None:
        """TDS 8.0: plain TLS on the socket before any TDS packet."""
        while True:
            done = self._step()
            flight = self.outgoing.read()
            if flight:
                self.raw.sendall(flight)
            if done:
                return
            data = self.raw.recv(65536)
            if not data:
                raise ConnectionError("client closed the connection during the TLS handshake")
            self.incoming.write(data)

    def _step(self) -> bool:
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    @property
    def alpn(self) -> str | None:
        return self.tls.selected_alpn_protocol()

    def recv(self, size: int) -> bytes:
        while True:
            try:
                return self.tls.read(size)
            except ssl.SSLWantReadError:
                data = self.raw.recv(65536)
                if not data:
                    return b""
                self.incoming.write(data)
            except ssl.SSLZeroReturnError:
                return b""

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self.raw.sendall(self.outgoing.read())

    def pending(self) -> bool:
        if self.tls.pending() or self.incoming.pending:
            return True
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)
