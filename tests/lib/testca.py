"""A certificate authority made at test time (python3-cryptography), for the TLS tests and the
benchmark: a CA, server certificates it signs (each with its own serial), and the broken files
that start-up must refuse. Nothing here is ever trusted outside the test that made it.

    ca = TestCA(tmp_path)
    leaf = ca.issue(tmp_path / "a")        # leaf.cert (leaf + CA chain, PEM), leaf.key, leaf.serial
    ctx = ca.client_context()              # an ssl.SSLContext that trusts only this CA
"""

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_ONE_DAY = datetime.timedelta(days=1)


def _new_key(kind):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key, password=None):
    enc = (serialization.BestAvailableEncryption(password) if password is not None
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class Leaf:
    """A server certificate: cert (PEM file: the leaf, then the CA), key (PEM file), serial."""

    def __init__(self, cert_path, key_path, cert, key):
        self.cert = Path(cert_path)
        self.key = Path(key_path)
        self.certificate = cert
        self.private_key = key
        self.serial = cert.serial_number


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, folder, name="signal-server test CA"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = _new_key("ec")
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder()
                     .subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - _ONE_DAY).not_valid_after(now + 30 * _ONE_DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                                  crl_sign=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, encipher_only=False,
                                                  decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = self.folder / "ca.pem"
        self.cert_path.write_bytes(cert_pem(self.cert))

    def issue(self, folder, kind="ec", names=("localhost",), ips=("127.0.0.1",), serial=None,
              chain=True):
        """A server certificate for names and ips, signed by the CA, written as folder/cert.pem
        (with the CA after it when chain) and folder/key.pem."""
        import ipaddress
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key = _new_key(kind)
        now = datetime.datetime.now(datetime.timezone.utc)
        sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i))
                                                     for i in ips]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(serial or x509.random_serial_number())
                .not_valid_before(now - _ONE_DAY).not_valid_after(now + 7 * _ONE_DAY)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_bytes(cert_pem(cert) + (cert_pem(self.cert) if chain else b""))
        key_path.write_bytes(key_pem(key))
        key_path.chmod(0o600)
        return Leaf(cert_path, key_path, cert, key)

    def client_context(self, alpn=("http/1.1",), min_version=None, max_version=None):
        """A client context that trusts this CA only and checks the name."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cert_path))
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
        return ctx


def serial_of(sslsock):
    """The serial number of the certificate a TLS socket's server presented."""
    der = sslsock.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number
