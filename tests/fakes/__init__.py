"""Local fakes of external vendors' APIs, driven by the vendors' official SDKs in tests."""
