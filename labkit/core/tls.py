"""A lab certificate authority: the server certificates it signs, client certificates from CSRs, and
listeners that ask for an optional client certificate signed by it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .files import write_atomic

_YEARS = dt.timedelta(days=3650)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


class LabCA:
    """Creates the lab CA on first use; signs certificates for listeners."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert_path = folder / "ca.crt"
        key_path = folder / "ca.key"
        if not self.cert_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit-ca")])
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + _YEARS)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                    critical=True,
                )
                .sign(key, hashes.SHA256())
            )
            write_atomic(key_path, _key_pem(key), mode=0o600)
            write_atomic(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        self._key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    @property
    def pem(self) -> bytes:
        return self.cert_path.read_bytes()

    def server_cert(self, name: str, hosts: list[str]) -> tuple[Path, Path]:
        """Certificate and key files for ``name`` valid for ``hosts``; reissued when hosts change."""
        crt, key_path = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        wanted = sorted(set(hosts))
        if crt.exists() and key_path.exists():
            cur = x509.load_pem_x509_certificate(crt.read_bytes())
            san = cur.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = sorted(
                [str(x) for x in san.get_values_for_type(x509.IPAddress)]
                + san.get_values_for_type(x509.DNSName)
            )
            if have == wanted:
                return crt, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + _YEARS)
            .add_extension(_san(wanted), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())  # type: ignore[arg-type]
        )
        write_atomic(key_path, _key_pem(key), mode=0o600)
        write_atomic(crt, cert.public_bytes(serialization.Encoding.PEM))
        return crt, key_path

    def server_context(self, name: str, hosts: list[str], client_certs: bool = False) -> ssl.SSLContext:
        """A listener's TLS context; with ``client_certs`` it asks for an optional client certificate, which
        must then be signed by this CA (see ``peer_certificate`` and ``client_identity``)."""
        crt, key = self.server_cert(name, hosts)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(crt, key)
        if client_certs:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(cafile=str(self.cert_path))
        return ctx

    def sign_request(self, csr_pem: bytes, seconds: int, usages: list[x509.ObjectIdentifier]) -> bytes:
        """A PEM certificate for a PEM certificate request: its subject and key, valid ``seconds`` from five
        minutes ago (back-dated against clock skew, as Kubernetes' signer does), with these extended usages."""
        csr = x509.load_pem_x509_csr(csr_pem)
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self._cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(min(start + dt.timedelta(seconds=seconds), self._cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())  # type: ignore[arg-type]
        return cert.public_bytes(serialization.Encoding.PEM)


def client_identity(der: bytes) -> tuple[str, tuple[str, ...]] | None:
    """A verified client certificate's common name and organizations (Kubernetes' user name and groups), or
    None when it may not authenticate a client (no clientAuth among its extended key usages)."""
    cert = x509.load_der_x509_certificate(der)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in usages \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages:
        return None
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return (cn[0] if cn else ""), orgs
