"""Revflow: open-source billing and revenue platform."""

__version__ = "0.1.0"
