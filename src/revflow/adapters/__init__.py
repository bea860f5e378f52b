"""Adapters: concrete implementations of the protocols in :mod:`revflow.services.ports`."""
