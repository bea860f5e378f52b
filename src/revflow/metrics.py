"""Prometheus metrics counted in this process (``/metrics`` adds gauges read from the database).

Counters are hooks: any layer may increment them. In a deployment with separate worker processes, run
``revflow worker --metrics-port N`` so that each worker exposes its own counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "BILLING_RUNS",
    "BILLING_RUN_ERRORS",
    "PAYMENT_ERRORS",
    "RATE_LIMIT_WARNINGS",
    "RECONCILIATION_DISCREPANCIES",
    "SYNC_JOBS",
    "WEBHOOK_ATTEMPTS",
    "WEBHOOK_LATENCY",
]

WEBHOOK_ATTEMPTS = Counter(
    "revflow_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded, failed, gone, dead_lettered, refused).",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "revflow_webhook_delivery_latency_seconds",
    "Time from sending a webhook to its response (or error).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
BILLING_RUNS = Counter("revflow_billing_runs_total", "Billing runs completed by this process.")
BILLING_RUN_ERRORS = Counter(
    "revflow_billing_run_errors_total", "Customers a billing run failed to bill (see billing_failed alerts)."
)
PAYMENT_ERRORS = Counter(
    "revflow_payment_errors_total",
    "Charges that did not succeed, by outcome (failed, unknown, requires_action).",
    ["reason"],
)
SYNC_JOBS = Counter(
    "revflow_sync_jobs_total",
    "CRM sync job runs by kind and outcome (succeeded, retried, failed, dead).",
    ["kind", "outcome"],
)
RATE_LIMIT_WARNINGS = Counter(
    "revflow_rate_limit_warnings_total",
    "Times a connected system reported less than 10% of its request budget left.",
    ["system"],
)
RECONCILIATION_DISCREPANCIES = Counter(
    "revflow_crm_discrepancies_total",
    "Mismatches found by CRM reconciliation between Revflow and a connected system.",
    ["system"],
)
