"""/v1 routes for catalog."""

from __future__ import annotations

from revflow.api.routers._common import router

api = router("catalog")
