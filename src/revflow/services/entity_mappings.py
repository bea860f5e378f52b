"""Entity mappings: which object in each connected system a Revflow object corresponds to.

A mapping links (object_type, object_id) to (system, external_type, external_id), unique both ways. A
request that would link an external object twice, or give a Revflow object a second counterpart of the
same type in the same system, changes nothing: the API answers ``409 mapping_conflict``, and automated
linking (connector syncs, through :func:`link`) records an ``entity_mapping_conflict`` alert instead.

Customer mappings of a system's customer type (``company`` in HubSpot, ``account`` in Salesforce,
``customer`` elsewhere) are mirrored in ``customer_external_ids`` in the same transaction, so the
customer API's ``external_ids`` and the mappings always agree; :func:`mirror_customer_id` is the other
direction, called by the customer service.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import or_, select

from revflow.domain.errors import Conflict, InvalidInput
from revflow.domain.ids import new_id
from revflow.domain.mapping import OBJECT_TYPES, customer_external_type
from revflow.services.alerts import raise_alert
from revflow.services.context import Ctx
from revflow.services.recorder import diff, record
from revflow.storage import models as m
from revflow.storage.hub_models import EntityMapping

__all__ = [
    "MappingConflict",
    "create_mapping",
    "delete_mapping",
    "link",
    "mirror_customer_id",
    "update_mapping",
]

_MODELS: dict[str, Any] = {
    "customer": m.Customer,
    "subscription": m.Subscription,
    "invoice": m.Invoice,
    "plan": m.Plan,
    "price": m.Price,
    "product": m.Product,
    "credit_note": m.CreditNote,
    "payment": m.Payment,
}
assert set(_MODELS) == set(OBJECT_TYPES)


class MappingConflict(Conflict):
    """The mapping would link an external object twice, or a Revflow object to two counterparts (409)."""

    code = "mapping_conflict"


def _conflicts(
    ctx: Ctx, *, object_type: str, object_id: str, system: str, external_type: str, external_id: str
) -> list[EntityMapping]:
    """Existing mappings that the proposed one would contradict (not the same link)."""
    rows = ctx.session.scalars(
        select(EntityMapping).where(
            EntityMapping.org_id == ctx.org_id,
            EntityMapping.system == system,
            EntityMapping.external_type == external_type,
            or_(
                EntityMapping.external_id == external_id,
                (EntityMapping.object_type == object_type) & (EntityMapping.object_id == object_id),
            ),
        )
    )
    return [
        r
        for r in rows
        if not (r.object_type == object_type and r.object_id == object_id and r.external_id == external_id)
    ]


def _conflict_error(existing: list[EntityMapping], proposed: dict[str, str]) -> MappingConflict:
    first = existing[0]
    if first.external_id == proposed["external_id"]:
        message = (
            f"{proposed['system']} {proposed['external_type']} '{proposed['external_id']}' is already "
            f"linked to {first.object_type} {first.object_id}"
        )
    else:
        message = (
            f"{proposed['object_type']} {proposed['object_id']} is already linked to {proposed['system']} "
            f"{proposed['external_type']} '{first.external_id}'"
        )
    return MappingConflict(
        message,
        details=[
            {"field": "external_id", "code": "mapping_conflict", "mapping_id": e.id, "object_id": e.object_id}
            for e in existing
        ],
    )


def _resolve(ctx: Ctx, object_type: str, object_id: str, external_type: str | None, system: str) -> str:
    if object_type not in _MODELS:
        raise InvalidInput(
            f"object_type must be one of {', '.join(OBJECT_TYPES)}",
            details=[{"field": "object_type", "code": "invalid_object_type"}],
        )
    ctx.get(_MODELS[object_type], object_id, label=object_type)
    if external_type is not None:
        return external_type
    return customer_external_type(system) if object_type == "customer" else object_type


def _mirrors(mapping: EntityMapping) -> bool:
    return mapping.object_type == "customer" and mapping.external_type == customer_external_type(
        mapping.system
    )


def _set_customer_external_id(ctx: Ctx, customer_id: str, system: str, external_id: str | None) -> None:
    customer = ctx.get(m.Customer, customer_id, label="customer")
    current = {e.system: e for e in customer.external_ids}
    if external_id is None:
        if system in current:
            customer.external_ids.remove(current[system])
    elif system in current:
        current[system].external_id = external_id
    else:
        customer.external_ids.append(
            m.CustomerExternalId(org_id=ctx.org_id, system=system, external_id=external_id)
        )


def create_mapping(
    ctx: Ctx,
    *,
    object_type: str,
    object_id: str,
    system: str,
    external_id: str,
    external_type: str | None = None,
    metadata: dict[str, str] | None = None,
) -> EntityMapping:
    """Link a Revflow object to an external one and return the mapping; linking the same pair again
    returns the existing mapping. Raises NotFound (no such object), InvalidInput (unknown object type)
    and MappingConflict (409: either side already linked elsewhere; nothing changes)."""
    external_type = _resolve(ctx, object_type, object_id, external_type, system)
    proposed = {
        "object_type": object_type,
        "object_id": object_id,
        "system": system,
        "external_type": external_type,
        "external_id": external_id,
    }
    existing = _conflicts(ctx, **proposed)
    if existing:
        raise _conflict_error(existing, proposed)
    same = ctx.session.scalar(
        select(EntityMapping).where(
            EntityMapping.org_id == ctx.org_id,
            EntityMapping.system == system,
            EntityMapping.external_type == external_type,
            EntityMapping.external_id == external_id,
        )
    )
    if same is not None:
        return same
    now = ctx.now()
    mapping = EntityMapping(
        id=new_id("map"),
        org_id=ctx.org_id,
        metadata_=metadata or {},
        created_at=now,
        updated_at=now,
        **proposed,
    )
    ctx.session.add(mapping)
    if _mirrors(mapping):
        _set_customer_external_id(ctx, object_id, system, external_id)
    ctx.session.flush()
    record(
        ctx,
        action="entity_mapping.create",
        object_type="entity_mapping",
        object_id=mapping.id,
        changes=dict(proposed),
    )
    return mapping


def update_mapping(ctx: Ctx, mapping_id: str, *, changes: dict[str, Any]) -> EntityMapping:
    """Point the mapping at another ``external_id`` and/or replace its ``metadata``; returns it. Raises
    NotFound and MappingConflict."""
    mapping = ctx.get(EntityMapping, mapping_id, for_update=True, label="entity_mapping")
    before = {"external_id": mapping.external_id, "metadata": dict(mapping.metadata_)}
    new_external = changes.get("external_id")
    if new_external is not None and new_external != mapping.external_id:
        proposed = {
            "object_type": mapping.object_type,
            "object_id": mapping.object_id,
            "system": mapping.system,
            "external_type": mapping.external_type,
            "external_id": new_external,
        }
        existing = [e for e in _conflicts(ctx, **proposed) if e.id != mapping.id]
        if existing:
            raise _conflict_error(existing, proposed)
        mapping.external_id = new_external
        if _mirrors(mapping):
            _set_customer_external_id(ctx, mapping.object_id, mapping.system, new_external)
    if changes.get("metadata") is not None:
        mapping.metadata_ = changes["metadata"]
    mapping.updated_at = ctx.now()
    ctx.session.flush()
    record(
        ctx,
        action="entity_mapping.update",
        object_type="entity_mapping",
        object_id=mapping.id,
        changes=diff(before, {"external_id": mapping.external_id, "metadata": dict(mapping.metadata_)}),
    )
    return mapping


def delete_mapping(ctx: Ctx, mapping_id: str) -> str:
    """Unlink; returns the mapping id. A mirrored customer id disappears from the customer too."""
    mapping = ctx.get(EntityMapping, mapping_id, for_update=True, label="entity_mapping")
    if _mirrors(mapping):
        _set_customer_external_id(ctx, mapping.object_id, mapping.system, None)
    ctx.session.delete(mapping)
    ctx.session.flush()
    record(
        ctx,
        action="entity_mapping.delete",
        object_type="entity_mapping",
        object_id=mapping_id,
        changes={
            "object_id": mapping.object_id,
            "system": mapping.system,
            "external_id": mapping.external_id,
        },
    )
    return mapping_id


def link(
    ctx: Ctx,
    *,
    object_type: str,
    object_id: str,
    system: str,
    external_id: str,
    external_type: str | None = None,
    on_conflict: Literal["raise", "alert"] = "alert",
) -> EntityMapping | None:
    """For sync jobs: link, or confirm the existing link, and return the mapping. On a conflict with
    ``on_conflict="alert"`` nothing is linked, an open ``entity_mapping_conflict`` alert records both
    sides (once per external object) and None is returned; with ``"raise"`` MappingConflict is raised."""
    try:
        with ctx.session.begin_nested():
            return create_mapping(
                ctx,
                object_type=object_type,
                object_id=object_id,
                system=system,
                external_id=external_id,
                external_type=external_type,
            )
    except MappingConflict as exc:
        if on_conflict == "raise":
            raise
        ext_type = _resolve(ctx, object_type, object_id, external_type, system)
        raise_alert(
            ctx.session,
            org_id=ctx.org_id,
            type="entity_mapping_conflict",
            message=f"Not linked: {exc.message}.",
            dedupe_key=f"entity_mapping_conflict:{system}:{ext_type}:{external_id}:{object_id}",
            now=ctx.now(),
            object_type=object_type,
            object_id=object_id,
            details={
                "system": system,
                "external_type": ext_type,
                "external_id": external_id,
                "conflicts": exc.details,
            },
        )
        return None


def mirror_customer_id(ctx: Ctx, *, customer_id: str, system: str, external_id: str | None) -> None:
    """Keep the customer's mapping in ``system`` equal to its ``external_ids`` entry (None: unlinked).
    Called by the customer service after it changed ``customer_external_ids``; raises MappingConflict
    when the external object is mapped to something else."""
    external_type = customer_external_type(system)
    mine = ctx.session.scalar(
        select(EntityMapping).where(
            EntityMapping.org_id == ctx.org_id,
            EntityMapping.object_type == "customer",
            EntityMapping.object_id == customer_id,
            EntityMapping.system == system,
            EntityMapping.external_type == external_type,
        )
    )
    if external_id is None:
        if mine is not None:
            ctx.session.delete(mine)
        return
    if mine is not None and mine.external_id == external_id:
        return
    proposed = {
        "object_type": "customer",
        "object_id": customer_id,
        "system": system,
        "external_type": external_type,
        "external_id": external_id,
    }
    others = [e for e in _conflicts(ctx, **proposed) if mine is None or e.id != mine.id]
    if others:
        raise _conflict_error(others, proposed)
    now = ctx.now()
    if mine is None:
        ctx.session.add(
            EntityMapping(
                id=new_id("map"), org_id=ctx.org_id, metadata_={}, created_at=now, updated_at=now, **proposed
            )
        )
    else:
        mine.external_id, mine.updated_at = external_id, now
    ctx.session.flush()
