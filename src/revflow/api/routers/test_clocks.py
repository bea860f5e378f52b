"""/v1 routes for test clocks."""

from __future__ import annotations

from revflow.api.routers._common import router

api = router("test_clocks")
