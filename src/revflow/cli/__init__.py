"""The ``revflow`` command."""
