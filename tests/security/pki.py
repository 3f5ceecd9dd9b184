"""A throw-away x509 PKI for the TLS tests (``cryptography``): CA, server, clients."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ONE_DAY = datetime.timedelta(days=1)


def name(org: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class Authority:
    """A CA that signs server and client certificates into ``directory``."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, directory: Path, cn: str = "hvmon test CA") -> Authority:
        directory.mkdir(parents=True, exist_ok=True)
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        subject = name("Example", cn)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - ONE_DAY).not_valid_after(now + ONE_DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .sign(key, hashes.SHA256()))
        _write_cert(cert, directory / "cacert.pem")
        return cls(directory, key, cert)

    @property
    def cacert(self) -> Path:
        return self.directory / "cacert.pem"

    def issue(self, stem: str, subject: x509.Name, *, server: bool = False) -> tuple[Path, Path]:
        """(certificate, key) files for ``subject``."""
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - ONE_DAY).not_valid_after(now + ONE_DAY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.directory / f"{stem}cert.pem", self.directory / f"{stem}key.pem"
        _write_cert(cert, cert_path)
        _write_key(key, key_path)
        return cert_path, key_path

    def client_dir(self, stem: str, subject: x509.Name) -> Path:
        """A libvirt-style pkipath directory (cacert.pem, clientcert.pem, clientkey.pem)."""
        folder = self.directory / stem
        folder.mkdir(exist_ok=True)
        cert, key = self.issue(stem, subject)
        (folder / "cacert.pem").write_bytes(self.cacert.read_bytes())
        (folder / "clientcert.pem").write_bytes(cert.read_bytes())
        (folder / "clientkey.pem").write_bytes(key.read_bytes())
        (folder / "clientkey.pem").chmod(0o600)
        return folder
