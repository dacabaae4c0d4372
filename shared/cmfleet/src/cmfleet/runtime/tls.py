"""The runtime's own certificate authority and server certificate (the SDK verifies the runtime over TLS).

The CA is what ``CONNECTIONS_TO_OTHER_PODS_CA_PATH`` and ``DEFAULT_CA_PATH`` name; the server certificate
carries SANs for ``localhost`` and ``127.0.0.1`` (the SDK checks the host name ``RUNTIME_HOST=localhost``).
ECDSA P-256 keys: quick to generate and cheap to handshake.
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast


class DirectSSLObject(ssl.SSLObject):
    """``ssl.SSLObject`` whose ``read``, ``write`` and ``pending`` are the C object's own methods.

    uvloop's TLS layer (``wrap_bio``, then these three per record) calls them for every request and answer; the
    stdlib's versions are Python functions that only forward to ``_sslobj``, and every "want read" error of a
    drained buffer passed up through one. Binding the C methods on the instance (same arguments, results and
    errors) saves a Python frame per call: about 2% of the runtime's CPU per job. ``sslobject_class`` is the
    documented way to give ``wrap_bio`` a subclass; ``_create`` is how ``wrap_bio`` makes one (Python 3.7+).
    """

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> DirectSSLObject:
        self = super()._create(*args, **kwargs)  # type: ignore[misc]  # private, not in typeshed: self is Any
        native = self._sslobj
        self.read, self.write, self.pending = native.read, native.write, native.pending
        return cast(DirectSSLObject, self)  # SSLObject._create (untyped, see above) makes an instance of cls


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one runtime: the CA (given to replicas) and the server pair (kept by the runtime)."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving the runtime's certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.sslobject_class = DirectSSLObject
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts only this runtime's CA (for tests and tools)."""
        return ssl.create_default_context(cafile=str(self.ca))


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _valid(files: TlsFiles) -> bool:
    from cryptography import x509

    try:
        for path in (files.ca, files.cert):
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            if cert.not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1):
                return False
        return files.key.exists()
    except (OSError, ValueError):
        return False


def ensure_tls(folder: Path) -> TlsFiles:
    """The CA and server certificate in ``folder``, generated when missing or about to expire."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if _valid(files):
        return files
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cmfleet dev local runtime CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=397))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(
        files.key,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    _write_private(files.cert, cert.public_bytes(pem))
    _write_private(files.ca, ca_cert.public_bytes(pem))  # the CA key is never stored: nothing else gets signed
    return files
