# ruff: noqa: E501  (Salesforce's own messages are quoted verbatim)
"""A faithful fake of a Salesforce org for tests: ``FakeSalesforce`` serves ``simple-salesforce`` over local HTTPS.

    with FakeSalesforce() as fake:
        sf = fake.sdk()  # or Salesforce(instance_url=fake.url, session_id=fake.session_id, session=...)
        sf.Account.create({"Name": "Acme"})

See ``server.FakeSalesforce`` for the controls (user edits, clock, faults, expired sessions, API usage).
"""

from .errors import SalesforceApiError
from .server import FakeSalesforce, FaultKind, RecordedRequest, running_fake
from .state import FIELDS, STAGES

__all__ = [
    "FIELDS",
    "STAGES",
    "FakeSalesforce",
    "FaultKind",
    "RecordedRequest",
    "SalesforceApiError",
    "running_fake",
]
