"""A fresh RSA private key (PEM) for the App the fake GitHub knows: tests, bench and e2e runs sign JWTs with it."""

from __future__ import annotations


def private_key_pem() -> str:
    """A new 2048-bit RSA key in PKCS#8 PEM (about 0.1 s: generate it once per session or run)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
