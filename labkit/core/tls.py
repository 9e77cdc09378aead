"""A lab certificate authority and the server certificates it signs."""

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

    def server_context(self, name: str, hosts: list[str]) -> ssl.SSLContext:
        crt, key = self.server_cert(name, hosts)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(crt, key)
        return ctx
