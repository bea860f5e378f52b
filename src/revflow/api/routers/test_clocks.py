"""/v1/test_clocks"""

from __future__ import annotations

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_subscriptions import ClockAdvance, ClockCreate
from revflow.services import test_clocks as svc
from revflow.services.views_subscriptions import TestClockView
from revflow.storage.models import TestClock

api = router("test_clocks")


@api.post("/test_clocks", status_code=201, response_model=TestClockView, summary="Create a test clock")
def create_clock(body: ClockCreate, ctx: CtxDep) -> TestClockView:
    return TestClockView.of(svc.create_clock(ctx, frozen_time=body.frozen_time, name=body.name))


@api.get("/test_clocks", response_model=ListOf[TestClockView], summary="List test clocks")
def list_clocks(ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    result = svc.list_clocks(
        ctx, limit=page.limit, starting_after=page.starting_after, ending_before=page.ending_before
    )
    return envelope("/v1/test_clocks", [TestClockView.of(c) for c in result.items], result.has_more)


@api.get("/test_clocks/{test_clock_id}", response_model=TestClockView, summary="Retrieve a test clock")
def get_clock(test_clock_id: str, ctx: CtxDep) -> TestClockView:
    return TestClockView.of(ctx.get(TestClock, test_clock_id, label="test clock"))


@api.post(
    "/test_clocks/{test_clock_id}/advance",
    response_model=TestClockView,
    summary="Move the clock forward and bill what falls due",
)
def advance_clock(test_clock_id: str, body: ClockAdvance, ctx: CtxDep) -> TestClockView:
    clock, _ = svc.advance_clock(ctx, test_clock_id, to=body.frozen_time)
    return TestClockView.of(clock)
