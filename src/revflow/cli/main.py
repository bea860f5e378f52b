"""``revflow``: serve the API, run the worker, migrate, manage organizations, load the demo."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from revflow.config import Settings, get_settings
from revflow.logging import configure_logging

app = typer.Typer(help="Revflow: billing and revenue platform.", no_args_is_help=True, add_completion=False)
orgs_app = typer.Typer(help="Organizations (tenants).", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
clock_app = typer.Typer(
    help="Test clocks: simulated time for customers and subscriptions.", no_args_is_help=True
)
app.add_typer(clock_app, name="clock")
integrations_app = typer.Typer(help="Connected CRMs and their data flows.", no_args_is_help=True)
app.add_typer(integrations_app, name="integrations")
events_app = typer.Typer(
    help="Domain events: deliver them to webhook endpoints, replay them.", no_args_is_help=True
)
app.add_typer(events_app, name="events")
usage_app = typer.Typer(help="Usage metering: backfill and storage upkeep.", no_args_is_help=True)
app.add_typer(usage_app, name="usage")
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _container(settings: Settings):  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from revflow.bootstrap import build

    try:
        container = build(settings)
        with container.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return container
    except Exception as exc:
        err.print(f"[red]Cannot open the database {settings.database_url}[/red]: {exc}")
        err.print("Check REVFLOW_DATABASE_URL, that the server is running, then run `revflow migrate`.")
        raise typer.Exit(1) from exc


@app.command()
def migrate() -> None:
    """Apply database migrations to the configured database."""
    from revflow.storage.engine import migrate as run

    settings = _settings()
    with err.status(f"Migrating {settings.database_url} …"):
        run(settings.database_url)
    err.print("[green]Database is up to date.[/green]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    demo: Annotated[
        bool, typer.Option(help="Load the demo organization first and print its API key")
    ] = False,
    worker: Annotated[bool, typer.Option(help="Run the background worker in this process")] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes; above 1 the worker runs apart (`revflow worker`)")
    ] = 1,
) -> None:
    """Run the API (and, by default, the background worker) in one process."""
    import uvicorn

    from revflow.api.app import create_app
    from revflow.api.asgi import freeze_heap

    settings = _settings()
    if workers > 1:
        err.print(f"Revflow API on [bold]http://{host or settings.host}:{port or settings.port}[/bold]")
        uvicorn.run(
            "revflow.api.asgi:app_from_env",
            factory=True,
            workers=workers,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level.lower(),
        )
        return
    container = _container(settings)
    url = f"http://{host or settings.host}:{port or settings.port}"
    if demo:
        _load_demo(container, url)
    err.print(f"Revflow API on [bold]{url}[/bold]  (docs: {url}/docs)")
    api = create_app(container, start_worker=worker)
    freeze_heap()
    uvicorn.run(
        api,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
    )


@app.command("worker")
def run_worker(
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once, print what each did, exit")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics on this port")
    ] = None,
) -> None:
    """Run the background worker alone (for PostgreSQL deployments with several processes)."""
    from revflow.jobs.worker import Worker

    settings = _settings()
    worker = Worker(_container(settings))
    if once:
        done = worker.run_once()
        for name, count in done.items():
            typer.echo(f"{name}={count}")
        if any(count < 0 for count in done.values()):
            raise typer.Exit(1)
        return
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host)
    worker.run_forever()


@orgs_app.command("create")
def orgs_create(name: Annotated[str, typer.Option("--name", help="Organization name")]) -> None:
    """Create an organization; its new secret API key is the last line of output."""
    from revflow.services import orgs
    from revflow.services.context import Actor, Ctx

    settings = _settings()
    container = _container(settings)
    with container.sessions() as session:
        org = orgs.create_organization(session, name=name, now=container.clock.now())
        ctx = Ctx(session=session, org_id=org.id, actor=Actor("cli"), clock=container.clock)
        _, secret = orgs.create_api_key(ctx, name="default")
        session.commit()
    typer.echo(f"Created organization {org.id} ({name}). Its secret API key, shown once:")
    typer.echo(secret)


def _load_demo(container, url: str) -> None:  # type: ignore[no-untyped-def]
    from revflow.jobs.demo import load_demo

    with err.status("Loading demo data …"):
        org, secret, created = load_demo(container)
    what = "Created" if created else "Found"
    typer.echo(f"{what} demo organization {org.name} ({org.id}).")
    typer.echo(f"Try: curl -H 'Authorization: Bearer {secret}' {url}/v1/invoices")
    typer.echo(f"Demo API key: {secret}")


@app.command()
def bill(
    batch_size: Annotated[
        int | None, typer.Option(help="Customers per transaction (default REVFLOW_BILLING_BATCH_SIZE)")
    ] = None,
) -> None:
    """Run the billing engine once: bill every real-time customer with something due, with progress."""

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import func, select

    from revflow.services import billing
    from revflow.storage.models import Subscription

    settings = _settings()
    container = _container(settings)
    now: datetime = container.clock.now()
    with container.sessions() as session:
        due = (
            session.scalar(
                select(func.count(func.distinct(Subscription.customer_id))).where(
                    Subscription.next_billing_at <= now, Subscription.test_clock_id.is_(None)
                )
            )
            or 0
        )
    columns = (TextColumn("Billing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("billing", total=due)
        stats = billing.run_due(
            container.sessions,
            now=now,
            batch_size=batch_size or settings.billing_batch_size,
            progress=lambda n: progress.advance(task, n),
        )
    typer.echo(f"Billed {stats.customers} customers: {stats.invoices} invoices, {stats.lines} lines.")
    if stats.errors:
        err.print(
            f"[red]{stats.errors} customers failed[/red] (see GET /v1/alerts?type=billing_failed): "
            + ", ".join(stats.failed[:10])
        )
        raise typer.Exit(1)


@clock_app.command("advance")
def clock_advance(
    clock_id: Annotated[str, typer.Argument(help="Test clock id (clock_…)")],
    to: Annotated[
        str | None, typer.Option(help="ISO 8601 instant to move to, e.g. 2025-01-01T00:00:00Z")
    ] = None,
    days: Annotated[int, typer.Option(help="Move forward by this many days")] = 0,
    months: Annotated[int, typer.Option(help="Move forward by this many calendar months")] = 0,
) -> None:
    """Move a test clock forward and bill everything that falls due on it."""
    from datetime import datetime, timedelta

    from revflow.domain.cycles import shift
    from revflow.services import test_clocks
    from revflow.services.context import Actor, Ctx
    from revflow.storage.models import TestClock

    settings = _settings()
    container = _container(settings)
    with container.sessions() as session:
        clock = session.get(TestClock, clock_id)
        if clock is None:
            err.print(f"[red]No test clock {clock_id}.[/red] List them with GET /v1/test_clocks.")
            raise typer.Exit(1)
        if to is not None:
            try:
                target = datetime.fromisoformat(to.replace("Z", "+00:00"))
            except ValueError:
                err.print(f"[red]'{to}' is not an ISO 8601 instant[/red]; try 2025-01-01T00:00:00Z.")
                raise typer.Exit(2) from None
            if target.tzinfo is None:
                err.print("[red]Give the instant with its offset[/red], e.g. 2025-01-01T00:00:00Z.")
                raise typer.Exit(2)
        else:
            target = clock.frozen_time + timedelta(days=days)
            if months:
                target = shift(anchor=target, interval="month", count=months, n=1, tz="UTC")
        ctx = Ctx(session=session, org_id=clock.org_id, actor=Actor("cli"), clock=container.clock)
        with err.status(f"Advancing {clock_id} to {target.isoformat()} …"):
            try:
                clock, invoices = test_clocks.advance_clock(ctx, clock_id, to=target)
            except test_clocks.ClockBackwards as exc:
                err.print(f"[red]{exc.message}[/red]")
                raise typer.Exit(2) from None
        session.commit()
    typer.echo(f"{clock_id} is at {clock.frozen_time.isoformat()}; {len(invoices)} invoices created.")


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        err.print(
            f"[red]{option} '{value}' is not an ISO 8601 instant with an offset[/red], "
            "e.g. 2025-01-01T00:00:00Z."
        )
        raise typer.Exit(2)
    return parsed


@events_app.command("deliver")
def events_deliver() -> None:
    """Fan out new events and deliver everything due once (what the worker's outbox job does)."""
    from revflow.jobs.worker import deliver_events

    container = _container(_settings())
    try:
        attempted = deliver_events(container)
    finally:
        container.close()
    typer.echo(f"{attempted} delivery attempts.")


@events_app.command("replay")
def events_replay(
    event_id: Annotated[str | None, typer.Argument(help="Event id (evt_…) to deliver again")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Replay events created at or after (ISO 8601)")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="… and before this instant (ISO 8601)")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only to this webhook endpoint (we_…)")] = None,
    org: Annotated[str | None, typer.Option(help="Only events of this organization (org_…)")] = None,
    type: Annotated[str | None, typer.Option(help="Only events of this type, e.g. invoice.paid")] = None,
) -> None:
    """Deliver one event, or every event of a time range, again; the worker sends them."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from revflow.domain.errors import RevflowError
    from revflow.services import outbox

    gte, lt = _instant(since, "--from"), _instant(until, "--to")
    if event_id is None and (gte is None or lt is None):
        err.print("[red]Give an event id, or both --from and --to.[/red]")
        raise typer.Exit(2)
    container = _container(_settings())
    with container.sessions() as session:
        total = (
            1
            if event_id
            else outbox.count_events(session, org_id=org, created_gte=gte, created_lt=lt, type=type)
        )
        columns = (TextColumn("Replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("replay", total=total)

            def batch_done(n: int) -> None:
                session.commit()
                progress.advance(task, n)

            try:
                scheduled = outbox.replay(
                    session,
                    now=container.clock.now(),
                    org_id=org,
                    event_id=event_id,
                    created_gte=None if event_id else gte,
                    created_lt=None if event_id else lt,
                    type=type,
                    endpoint_id=endpoint,
                    on_batch=batch_done,
                )
            except RevflowError as exc:
                err.print(f"[red]{exc.message}[/red]")
                container.close()
                raise typer.Exit(2) from None
        session.commit()
    container.close()
    typer.echo(f"{scheduled} deliveries scheduled; the worker sends them (or run `revflow events deliver`).")


@usage_app.command("import")
def usage_import(
    file: Annotated[Path, typer.Argument(help="CSV with transaction_id, metric_code, customer columns, …")],
    org: Annotated[str, typer.Option("--org", help="Organization id (org_…)")],
    show: Annotated[int, typer.Option(help="Rejected rows to print")] = 50,
) -> None:
    """Import usage events from a CSV file; resumes where an interrupted import of the same file stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from revflow.services import usage_import as svc
    from revflow.storage.models import Organization

    if not file.is_file():
        err.print(f"[red]No such file: {file}[/red]")
        raise typer.Exit(2)
    settings = _settings()
    container = _container(settings)
    try:
        with container.sessions() as session:
            if session.get(Organization, org) is None:
                err.print(f"[red]No organization {org}.[/red]")
                raise typer.Exit(2)
        total = svc.count_rows(file)
        columns = (TextColumn("Importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("import", total=total)
            result = svc.import_csv(
                container.sessions,
                org_id=org,
                path=file,
                clock=container.clock,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        container.close()
    if result.skipped:
        typer.echo(f"Resumed after {result.skipped} rows already imported.")
    typer.echo(
        f"Imported {result.rows} rows: {result.accepted} accepted, {result.duplicates} duplicates, "
        f"{result.rejected} rejected."
    )
    for bad in result.bad[:show]:
        err.print(f"line {bad.line}: {bad.code}: {bad.message}")
    if result.rejected > show:
        err.print(f"… and {result.rejected - show} more rejected rows.")
    if result.rejected:
        raise typer.Exit(1)


@usage_app.command("partitions")
def usage_partitions(
    months: Annotated[int, typer.Option(help="Months ahead of now to create")] = 3,
) -> None:
    """PostgreSQL: create the monthly partitions of usage_events up to MONTHS ahead (run monthly)."""
    from revflow.services.usage_partitions import ensure_partitions

    settings = _settings()
    container = _container(settings)
    try:
        with container.sessions() as session:
            created = ensure_partitions(session, now=container.clock.now(), months_ahead=months)
            session.commit()
    finally:
        container.close()
    typer.echo(f"Created {len(created)} partitions" + (f": {', '.join(created)}" if created else "."))


@app.command()
def demo() -> None:
    """Create (or find) the demo organization with customers and invoices, and print an API key for it."""
    settings = _settings()
    _load_demo(_container(settings), f"http://{settings.host}:{settings.port}")


if __name__ == "__main__":
    app()


@integrations_app.command("flows")
def integrations_flows(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the flow catalog as docs/data-flows.md (no database)")
    ] = False,
    org: Annotated[str | None, typer.Option("--org", help="Organization id (default: every one)")] = None,
) -> None:
    """The data-flow map: with --markdown the catalog (docs/data-flows.md), else each integration's flows
    with owner, last success and error rate, as JSON."""
    from revflow.services import flows

    if markdown:
        typer.echo(flows.render_markdown(), nl=False)
        return
    import json

    from sqlalchemy import select

    from revflow.storage.models import Organization

    container = _container(_settings())
    try:
        with container.sessions() as session:
            org_ids = (
                [org] if org else list(session.scalars(select(Organization.id).order_by(Organization.id)))
            )
            now = container.clock.now()
            out = {o: flows.integration_flows(session, org_id=o, now=now) for o in org_ids}
        typer.echo(json.dumps(out, indent=2, default=str))
    finally:
        container.close()
