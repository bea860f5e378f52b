"""``metadata``: the free-form string map every object carries, and how an update merges into it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from revflow.domain.errors import InvalidInput

__all__ = ["MAX_METADATA_KEYS", "MetadataTooLarge", "merge_metadata"]

#: At most this many keys per object (Stripe's limit too).
MAX_METADATA_KEYS: Final = 50


class MetadataTooLarge(InvalidInput):
    """An update would leave more than :data:`MAX_METADATA_KEYS` keys (422 ``metadata_too_large``)."""

    code = "metadata_too_large"


def merge_metadata(current: Mapping[str, str], patch: Mapping[str, str | None] | None) -> dict[str, str]:
    """``current`` updated with ``patch``: a key set to None or "" is removed, the others are set.

    Returns the new map; raises MetadataTooLarge when more than 50 keys would remain.

    >>> merge_metadata({"plan": "gold", "region": "eu"}, {"region": None, "owner": "ada"})
    {'plan': 'gold', 'owner': 'ada'}
    >>> merge_metadata({"plan": "gold"}, None)
    {'plan': 'gold'}
    """
    merged = {**current, **(patch or {})}
    out = {k: v for k, v in merged.items() if v is not None and v != ""}
    if len(out) > MAX_METADATA_KEYS:
        message = f"metadata holds at most {MAX_METADATA_KEYS} keys"
        raise MetadataTooLarge(
            message, details=[{"field": "metadata", "code": MetadataTooLarge.code, "message": message}]
        )
    return out
