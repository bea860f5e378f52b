"""/v1 routes for discounts."""

from __future__ import annotations

from revflow.api.routers._common import router

api = router("discounts")
