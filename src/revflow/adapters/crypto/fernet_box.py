"""Secrets at rest sealed with Fernet (AES-128-CBC + HMAC-SHA256), keyed from ``REVFLOW_SECRET_KEY``.

Sealed values read ``fernet:<token>``. The 32-byte Fernet key is HKDF-SHA256 of the configured secret key
(with a fixed, purpose-bound info string), so any string works as ``REVFLOW_SECRET_KEY`` and a key used
here is never the raw setting. Earlier keys in ``previous`` still open old values (key rotation).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from revflow.services.ports import SecretUnreadable

__all__ = ["FernetSecretBox"]

PREFIX = "fernet:"


def _fernet(secret_key: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"revflow secrets at rest v1").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


class FernetSecretBox:
    def __init__(self, secret_key: str, previous: tuple[str, ...] = ()):
        self._fernet = MultiFernet([_fernet(secret_key), *(_fernet(k) for k in previous)])

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SecretUnreadable("the value is not sealed by this box")
        try:
            return self._fernet.decrypt(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("the secret was sealed with another REVFLOW_SECRET_KEY") from exc
