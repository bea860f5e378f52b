"""An application factory for servers that import the app by name (``uvicorn --factory --workers N``):
settings come from the environment (``REVFLOW_*``), like ``revflow serve``."""

from __future__ import annotations

from fastapi import FastAPI

from revflow.api.app import create_app
from revflow.bootstrap import build
from revflow.config import Settings

__all__ = ["app_from_env"]


def app_from_env() -> FastAPI:
    """The API for the settings in the environment, without the in-process worker (run ``revflow
    worker`` beside several API processes)."""
    return create_app(build(Settings()))
