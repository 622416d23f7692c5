"""Test-only PKI: a client CA, client certificates and the ServiceAccount token signing key.

The apiserver's serving certificate is not made here: kube-apiserver self-signs one into its
``--cert-dir`` and clients trust the ``apiserver.crt`` bundle it writes (cert followed by its CA).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# envtest issues its client certs for a week; a dev plane from `run_forever` rarely lives longer.
DEFAULT_VALIDITY = datetime.timedelta(days=7)
# Tolerates small clock differences between the Python process and the servers.
_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: as strong as needed here and much faster to generate than RSA.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


class CertificateAuthority:
    """A self-signed CA that issues client certificates (kube-apiserver's ``--client-ca-file``)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        """Wrap an existing CA key and certificate; use :meth:`create` to make a new CA."""
        self._key = key
        self._cert = cert

    @classmethod
    def create(
        cls, common_name: str = "mediagen-controlplane-ca", validity: datetime.timedelta = DEFAULT_VALIDITY
    ) -> CertificateAuthority:
        """Generate a fresh CA key and self-signed certificate."""
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        name = _name(common_name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + validity)
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate(self) -> x509.Certificate:
        """The CA certificate."""
        return self._cert

    def issue_client(
        self,
        common_name: str,
        organizations: Sequence[str] = (),
        validity: datetime.timedelta = DEFAULT_VALIDITY,
    ) -> KeyPair:
        """Issue a client certificate: kube-apiserver reads CN as the user and each O as a group."""
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organizations))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def issue_server(
        self, common_name: str, dns_names: Sequence[str], validity: datetime.timedelta = DEFAULT_VALIDITY
    ) -> KeyPair:
        """Issue a serving certificate for ``dns_names`` (and 127.0.0.1): what an aggregated API server presents to
        kube-apiserver, which checks it against the APIService's caBundle for ``<service>.<namespace>.svc``."""
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


FRONT_PROXY_CLIENT = "front-proxy-client"
"""The CN of kube-apiserver's proxy client certificate, and the one name its aggregated APIs allow."""


def admin_client_cert(ca: CertificateAuthority) -> KeyPair:
    """Issue the admin identity: CN=admin in group system:masters, which bypasses RBAC."""
    return ca.issue_client("admin", ["system:masters"])


@dataclass(frozen=True)
class SigningKey:
    """The ServiceAccount token signing key pair, both halves in PEM."""

    private_pem: bytes  # --service-account-signing-key-file
    public_pem: bytes  # --service-account-key-file (a bare public key is accepted)


def service_account_signing_key() -> SigningKey:
    """Generate the key kube-apiserver signs (and verifies) ServiceAccount tokens with."""
    key = _new_key()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(private_pem=_key_pem(key), public_pem=public)
