"""Tables of usage metering (issue 4).
Imported by revflow.storage.models so that they register on Base.metadata."""

from __future__ import annotations

from revflow.storage.models import Base, org_fk

__all__: list[str] = []

_ = (Base, org_fk)
