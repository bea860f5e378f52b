"""Loading the demo organization with the worker's payment jobs running between its simulated steps."""

from __future__ import annotations

from revflow.adapters.payments.sandbox import ACH_SETTLEMENT
from revflow.bootstrap import Container
from revflow.jobs.worker import collect_payments, deliver_emails, dunning_deadlines, sandbox_events
from revflow.services import demo
from revflow.storage.models import Organization

__all__ = ["load_demo"]

#: What ``revflow serve``'s worker does after each step of the demo's year (no billing run: the test
#: clock bills; no reconciliation or outbox: nothing of theirs changes what the demo shows).
DEMO_JOBS = (collect_payments, sandbox_events, dunning_deadlines, deliver_emails)


def load_demo(container: Container) -> tuple[Organization, str, bool]:
    """Create (or find) the demo organization and return (organization, a new secret API key, created).

    Its year of charges is collected through ``container.gateway`` (the sandbox on the embedded
    set-up) by the worker's own jobs, so the demo ends with the payments, dunning case and emails the
    worker would have produced.
    """

    def run_jobs() -> None:
        for job in DEMO_JOBS:
            job(container)

    return demo.load_demo(
        container.sessions,
        clock=container.clock,
        gateway=container.gateway,
        run_jobs=run_jobs,
        ach_settlement=ACH_SETTLEMENT,
    )
