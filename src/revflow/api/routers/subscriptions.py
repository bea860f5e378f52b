"""/v1 routes for subscriptions."""

from __future__ import annotations

from revflow.api.routers._common import router

api = router("subscriptions")
