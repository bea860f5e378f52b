"""Pieces every router shares: the transactional router, its dependencies, list parameters, envelopes,
exact JSON answers, PDF downloads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from revflow.api.tx import TxRoute, get_ctx
from revflow.bootstrap import Container
from revflow.services.context import Ctx
from revflow.storage.types import exact_json

__all__ = [
    "ContainerDep",
    "CtxDep",
    "ListParams",
    "ListParamsDep",
    "envelope",
    "exact_response",
    "pdf_response",
    "pdf_route",
    "router",
]

CtxDep = Annotated[Ctx, Depends(get_ctx)]


async def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


#: The app's container, for routes that start work outside the request (a test delivery, a sync run).
ContainerDep = Annotated[Container, Depends(_container)]


def router(tag: str) -> APIRouter:
    """A router whose routes run in one authenticated transaction each."""
    return APIRouter(prefix="/v1", tags=[tag], route_class=TxRoute)


@dataclass(frozen=True)
class ListParams:
    limit: int
    starting_after: str | None
    ending_before: str | None


async def _list_params(
    limit: Annotated[int, Query(ge=1, le=100, description="1 to 100, default 10")] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=40, description="Id to start after (next page)")
    ] = None,
    ending_before: Annotated[
        str | None, Query(max_length=40, description="Id to end before (previous page)")
    ] = None,
) -> ListParams:
    return ListParams(limit, starting_after, ending_before)


ListParamsDep = Annotated[ListParams, Depends(_list_params)]


def envelope(url: str, data: list[Any], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def exact_response(payload: Any) -> Response:
    """200 with ``payload`` as JSON, its Decimals (a customer's numbers: usage-event properties, and the
    domain events that carry them) written as the numbers they are. Build ``payload`` with the views'
    ``payload()``, which keeps those Decimals; the route keeps its ``response_model`` for the OpenAPI
    schema."""
    return Response(exact_json(payload), media_type="application/json")


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def pdf_route(api: APIRouter, path: str, *, document: str) -> Callable[[_Endpoint], _Endpoint]:
    """The GET route of a document's PDF download (``document``: "invoice", "quote", ...)."""
    return api.get(
        path,
        response_class=Response,
        summary=f"Download the {document} as PDF",
        responses={200: {"content": {"application/pdf": {}}}},
    )


def pdf_response(data: bytes, *, filename: str) -> Response:
    """A rendered PDF, shown inline by browsers, saved as ``filename``.pdf."""
    disposition = f'inline; filename="{filename}.pdf"'
    return Response(data, media_type="application/pdf", headers={"Content-Disposition": disposition})
