"""Encryption of secrets at rest."""

from revflow.adapters.crypto.fernet_box import FernetSecretBox

__all__ = ["FernetSecretBox"]
