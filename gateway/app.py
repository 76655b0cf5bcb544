"""The composition root: builds every part from the config and runs them in one task group.

Lifetimes nest like hypercorn's worker: the store outlives the actors, the actors outlive the
HTTP listener, so shutdown runs in the right order by construction: stop ingress (the listener
drains its requests), drain the actors' mailboxes, let the relay flush within the shutdown
deadline, close the store.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors.delivery import OutboundDelivery
from actors.erp_ingress import ErpIngress
from actors.runtime import Escalation, Service, Supervisor
from canonical.backoff import backoff_delay
from canonical.errors import ConfigError
from canonical.tracing import Tracer
from gateway.admin import AdminApp, guarded
from gateway.config import GatewayConfig, load_config
from gateway.config.base import Invalid
from gateway.console import build_console
from gateway.customer_api import (
    AccountBuckets,
    OrderStatusFeed,
    accounts_of,
    build_customer_api,
    serve_customer_api,
)
from gateway.edi_delivery import x12_delivery_for
from gateway.edi_watch import AcknowledgementWatch
from gateway.erp import build_erp_ingress, erp_router
from gateway.file_channels import FileChannels
from gateway.inventory import Inventory, InventoryMetrics
from gateway.logs import configure_logging
from gateway.metrics import GatewayMetrics, LatencyTally
from gateway.operator import OperatorApi, operator_routes
from gateway.outbound import build_outbound
from gateway.partners import Partners, StoreDeadLetters
from gateway.pull import StoreMessageBox, pull_policies
from gateway.relay import build_relay, relay_report
from gateway.reload import ReloadOutcome, ReloadPlan, plan_reload, reload_route
from gateway.resubmit import resubmitters
from gateway.sftp import FileChannelHealth, drop_box, drop_box_partners, hosted
from gateway.store import BatchReport, Retention, Store
from gateway.supervision import courier_restarts, relay_restarts, runtime_config
from gateway.telemetry import tracer_factory, tracing
from gateway.trace import TraceApi, trace_routes
from gateway.unroutable import UnroutableWatch
from gateway.workflow import Workflow
from protocols.amqp.consumer import QueueConsumer
from protocols.http.api import Accounts
from protocols.http.asgi import ASGIApp
from protocols.http.budget import BodyBudget
from protocols.http.egress import EgressClient
from protocols.http.guard import ListenerLimits
from protocols.http.ingress import WEBHOOK_PATH_PREFIX, WebhookIngress
from protocols.http.pull import PULL_PATH_PREFIX, PullApi
from protocols.http.routing import PrefixRouter
from protocols.http.server import serve
from protocols.sftp import DropBox, SftpError

__all__ = ["Gateway", "run_from_file", "run_gateway"]

logger = logging.getLogger("gateway")

BACKLOG_SAMPLE_INTERVAL_S = 1.0
# How often the gateway reads whether the relay (in the writer process) gave up.
RELAY_WATCH_INTERVAL_S = 0.5
# `gateway run`'s exit status when supervision gave up (EX_SOFTWARE).
EXIT_ESCALATED = 70
# The workflow gauges count rows (threads by status): sampled every this many backlog samples.
WORKFLOW_SAMPLE_EVERY = 5


class Gateway:
    """Every running part of one gateway process, for tests that need to reach inside."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        clock: Callable[[], float] = time.time,
        config_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        # Where `reload()` reads the configuration again (SIGHUP, POST /config/reload).
        self.config_path = config_path
        self._environ = dict(environ or {})
        # Applied reloads since start; one reload at a time.
        self.generation = 0
        self._reloading = anyio.Lock()
        # The workflow's clock (its rules' "now" and its timers); tests move it instead of waiting.
        self.clock = clock
        self.metrics = GatewayMetrics()
        self.http_port: int | None = None
        self.admin_port: int | None = None
        # The customer API's listener (`[customer_api]`), when configured.
        self.customer_api_port: int | None = None
        self.order_status: OrderStatusFeed | None = None
        self.store: Store | None = None
        self.outbound: OutboundDelivery | None = None
        self.erp: ErpIngress | None = None
        self.erp_consumers: list[QueueConsumer] = []
        self.workflow: Workflow | None = None
        # Inventory positions ([inventory]); their metrics registered once per gateway.
        self.inventory: Inventory | None = None
        self.inventory_metrics = InventoryMetrics(self.metrics.registry)
        self.files: FileChannels | None = None
        self.drop_box: DropBox | None = None
        # Registered once per gateway, whichever run builds the channels.
        self.file_health = FileChannelHealth(self.metrics.registry)
        self.drop_box_port: int | None = None
        # Says loudly when accepted messages are routed nowhere (no queue bound).
        self.unroutable = UnroutableWatch(config.amqp.events_exchange)
        self.stopping = anyio.Event()
        # What a reload swaps besides the config (see `_swap`), once running.
        self._partners: Partners | None = None
        self._pull: PullApi | None = None
        self._accounts: Accounts | None = None
        self._account_buckets = AccountBuckets()
        self._acknowledgements: AcknowledgementWatch | None = None
        self._build_outbound: Callable[[GatewayConfig], OutboundDelivery] | None = None
        self._operator: OperatorApi | None = None
        # Records spans while running, when the file has [telemetry] (gateway/telemetry.py).
        self.tracer: Tracer | None = None

    async def run(self, *, task_status: TaskStatus[Gateway] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until `stop()` or cancellation; report self once the listeners are bound."""
        cfg = self.config
        metrics = self.metrics
        store = Store(
            cfg.store.path,
            synchronous=cfg.store.synchronous,
            max_batch=cfg.store.max_batch,
            retention=retention_of(cfg),
            purge_interval_s=cfg.store.purge_interval_s,
            purge_chunk_s=cfg.store.purge_chunk_s,
            on_batch=self._batch_done,
            # Runs in the store's writer process, under a supervisor of its own there.
            relay=partial(build_relay, cfg.amqp, restarts=relay_restarts(cfg.runtime)),
            configure_logging=partial(configure_logging, cfg.log.level),
            tracer=tracer_factory(cfg.telemetry),  # the writer's own, for commits and publishes
            clock=self.clock,
        )
        Path(cfg.store.path).parent.mkdir(parents=True, exist_ok=True)
        async with tracing(cfg.telemetry) as self.tracer, store, EgressClient() as egress:
            self.store = store
            self.unroutable.starting_with((await store.dead_letter_book.counts()).get("relay", 0))
            # One courier per partner with an `outbound(_amqp)` channel (actors/delivery); a
            # reload builds them again from its partners.
            self._build_outbound = lambda config: build_outbound(
                config.partners,
                store.deliveries,
                egress,
                amqp=config.amqp,
                on_attempt=self._attempted,
                channel_for=lambda partner, other: x12_delivery_for(partner, store, other),
                restarts=courier_restarts(config.runtime),
                tracer=self.tracer,
            )
            self.outbound = self._build_outbound(cfg)
            runtime = runtime_config(cfg.runtime)
            # Every restart the gateway paces follows one rule, canonical.backoff.
            supervisor = Supervisor(
                runtime, dead_letters=StoreDeadLetters(store), backoff=backoff_delay
            )
            async with anyio.create_task_group() as services:
                services.start_soon(self._sample_backlog, store)
                # X12 sets partners have not acknowledged, or rejected (gateway/edi_watch.py).
                self._acknowledgements = AcknowledgementWatch(
                    store, cfg.partners, gauge=self.metrics.edi_unacknowledged, clock=self.clock
                )
                services.start_soon(self._acknowledgements.run)
                async with supervisor:
                    # Couriers, the relay's watch and the ERP consumers are supervised services:
                    # restarted with backoff within a budget, escalating past it (the gateway
                    # stops with the error; what was accepted waits in the store).
                    self.outbound.start(supervisor)
                    supervisor.start_service("relay", partial(self._watch_relay, store))
                    partners = self._partners = Partners(cfg, store)
                    budget = BodyBudget(
                        total=cfg.http.max_body_bytes_in_flight,
                        per_partner=cfg.http.max_partner_body_bytes_in_flight,
                        wait_s=cfg.http.body_wait_s,
                    )
                    self._export_statistics(supervisor, store, budget)
                    async with anyio.create_task_group() as listeners:
                        self.workflow = self._workflow(store, supervisor)
                        if self.workflow is not None:
                            # Before any intake, so a first start knows where the feed
                            # begins. Threads run under the supervisor; the feeder and the
                            # timer service stop with the listeners, before the actors drain.
                            await listeners.start(self.workflow.run)
                        if cfg.inventory.enabled:
                            self.inventory = Inventory(
                                cfg.inventory,
                                store,
                                supervisor,
                                self.inventory_metrics,
                                clock=self.clock,
                            )
                            await listeners.start(self.inventory.run)
                        self.admin_port = await listeners.start(
                            _serve_admin, self._admin_app(store), cfg
                        )
                        await self._start_customer_api(store, listeners)
                        ingress = WebhookIngress(
                            partners,
                            partners,
                            tolerance=cfg.http.signature_tolerance_s,
                            on_answer=metrics.request_answered,
                            budget=budget,
                            tracer=self.tracer,
                        )
                        # Webhooks in, and messages pulled by partners that take no webhooks.
                        pull = self._pull = PullApi(
                            pull_policies(cfg.partners), StoreMessageBox(store)
                        )
                        self.http_port = await listeners.start(
                            _serve_ingress,
                            PrefixRouter(
                                [(WEBHOOK_PATH_PREFIX, ingress), (PULL_PATH_PREFIX, pull)]
                            ),
                            cfg,
                        )
                        self.erp, self.erp_consumers = build_erp_ingress(cfg, store)
                        consuming: list[Service] = [
                            supervisor.start_service(f"erp-consumer/{c.spec.queue}", c.run)
                            for c in self.erp_consumers
                        ]
                        # Partners' file channels: one poller each (gateway/file_channels.py),
                        # the hosted partners' behind the drop box they upload to.
                        await self._start_drop_box(listeners)
                        self.files = self._file_channels(cfg)
                        await listeners.start(self.files.run)
                        gc.freeze()  # start-up objects never need collecting again
                        logger.info(
                            "gateway ready",
                            extra={
                                "fields": {
                                    "http_port": self.http_port,
                                    "admin_port": self.admin_port,
                                    "events_exchange": cfg.amqp.events_exchange,
                                }
                            },
                        )
                        task_status.started(self)
                        await self.stopping.wait()
                        for consumer in consuming:  # intake stops first, with the listeners
                            await consumer.stop()
                        listeners.cancel_scope.cancel()
                    undrained = await supervisor.shutdown(runtime.shutdown_deadline_s)
                    if undrained:
                        logger.warning("%d messages not handled at shutdown", undrained)
                # Intake has stopped: give a connected relay the same deadline to publish
                # what is left. Without a broker nothing could go out: the rows stay in the
                # store for the next start, and shutdown does not wait for nothing.
                await store.flush_relay(runtime.shutdown_deadline_s)
                services.cancel_scope.cancel()

    def stop(self) -> None:
        self.stopping.set()

    async def reload(self) -> ReloadOutcome:
        """Read the configuration file again and swap in what changed (gateway/reload.py).

        A file with errors is refused whole, every error logged and answered; the gateway runs
        on as it was. Reloads run one at a time.
        """
        async with self._reloading:
            outcome = await self._reload()
        fields = {"generation": outcome.generation, "changes": list(outcome.changes)}
        if not outcome.applied:
            for error in outcome.errors:
                logger.error("reload refused: %s", error)
            logger.error(
                "reload refused: %d error(s); still running configuration %d",
                len(outcome.errors),
                self.generation,
            )
            return outcome
        for setting in outcome.pending_restart:
            logger.warning("reload: %s changed; it takes effect at the next restart", setting)
        logger.info(
            "reload: %s",
            "; ".join(outcome.changes) or "nothing to change",
            extra={"fields": fields},
        )
        return outcome

    async def _reload(self) -> ReloadOutcome:
        def refused(*errors: str) -> ReloadOutcome:
            return ReloadOutcome(applied=False, generation=self.generation, errors=errors)

        if self.config_path is None:
            return refused("this gateway was started without a configuration file to read again")
        if self.stopping.is_set():
            return refused("the gateway is shutting down")
        try:
            new = await anyio.to_thread.run_sync(load_config, self.config_path, self._environ)
        except ConfigError as exc:
            return refused(*(error.message for error in exc.errors))
        try:
            plan = plan_reload(self.config, new)
        except Invalid as exc:
            # The new partners do not fit the settings that wait for a restart.
            return refused(
                *(
                    f"{where}: {why} (with the settings running until a restart)"
                    for where, why in exc.problems
                )
            )
        if not plan.empty:
            try:
                self._swap(plan)
            except (ValueError, SftpError) as exc:
                return refused(f"{self.config_path}: {exc}")
            self.generation += 1
            if self.workflow is not None:
                await self.workflow.retime_timers()
        return ReloadOutcome(
            applied=True,
            generation=self.generation,
            changes=plan.changes,
            pending_restart=plan.pending_restart,
        )

    def _swap(self, plan: ReloadPlan) -> None:
        """Swap `plan`'s configuration into every running part, with no await in between: no
        request or message sees half of it. Work under way keeps what it already read.

        Raises ValueError or SftpError, having changed nothing, when the running gateway cannot
        serve the new partners (a hosted partner and no drop box running, an unreadable key).
        """
        cfg = plan.config
        # What may refuse the new partners comes first, the drop box's check last of them.
        outbound = files = None
        if plan.partners:
            if self._build_outbound is not None:
                outbound = self._build_outbound(cfg)
            if self.files is not None:
                files = self._file_channels(cfg)
            if self.drop_box is not None:
                self.drop_box.reconfigure(drop_box_partners(cfg.partners))
        self.config = cfg
        logging.getLogger().setLevel(cfg.log.level)
        if self._partners is not None:
            self._partners.reconfigure(cfg)
        if self._pull is not None:
            self._pull.reconfigure(pull_policies(cfg.partners))
        if self.erp is not None:
            self.erp.route_with(erp_router(cfg))
        if self.workflow is not None:
            self.workflow.reconfigure(cfg)
        if self._accounts is not None:
            self._accounts.replace(accounts_of(cfg, self._account_buckets))
        if self._acknowledgements is not None:
            self._acknowledgements.reconfigure(cfg.partners)
        if self.store is not None:  # the X12 keys are kept for the partners' replay windows
            self.store.retain(retention_of(cfg))
        if self._operator is not None and self.store is not None:
            self._operator.reconfigure(cfg.partner_ids, resubmitters(cfg, self.store))
        if outbound is not None and self.outbound is not None:
            self.outbound.adopt(outbound, plan.partners)
        if files is not None and self.files is not None:
            self.files.adopt(files, plan.partners)

    def _workflow(self, store: Store, supervisor: Supervisor) -> Workflow | None:
        cfg = self.config
        if not cfg.erp.publish_events:
            # The loader turns the threads off in a file without [workflow]; say why.
            logger.warning(
                "purchase-order threads off: they read the ERP's orders from the events that"
                " [erp] publish_events = false turns off"
            )
            return None
        if not cfg.workflow.enabled:
            return None
        return Workflow(cfg, store, supervisor, self.metrics, clock=self.clock, tracer=self.tracer)

    async def _start_customer_api(self, store: Store, listeners: TaskGroup) -> None:
        """Serve `/api/v1` and feed the orders' status, when `[customer_api]` is configured."""
        settings = self.config.customer_api
        if settings is None:
            return
        # Availability from the inventory positions' read model, never the ERP.
        self._accounts = accounts_of(self.config, self._account_buckets)
        app = build_customer_api(
            self.config,
            store,
            accounts=self._accounts,
            availability=store.inventory,
            clock=self.clock,
            tracer=self.tracer,
        )
        self.order_status = OrderStatusFeed(store, self.config, settings)
        await listeners.start(self.order_status.run)
        self.customer_api_port = await listeners.start(serve_customer_api, app, settings)

    def _file_channels(self, config: GatewayConfig) -> FileChannels:
        assert self.store is not None
        return FileChannels(
            config,
            self.store,
            on_commit=self._files_committed,
            clock=self.clock,
            health=self.file_health,
            drop_box=self.drop_box,
        )

    async def _start_drop_box(self, listeners: TaskGroup) -> None:
        """Serve the hosted SFTP drop box, when configured and some partner is hosted there."""
        settings = self.config.sftp_dropbox
        if settings is None or not hosted(self.config.partners):
            return
        self.drop_box = drop_box(settings, self.config.partners)
        self.drop_box_port = await listeners.start(self.drop_box.serve)
        logger.info(
            "sftp drop box listening",
            extra={"fields": {"host": settings.host, "port": self.drop_box_port}},
        )

    async def _watch_relay(self, store: Store) -> None:
        """Escalate when the relay in the writer process gave up (its own restarts ran out)."""
        while True:
            report = relay_report(store)
            if report is not None and report.gave_up is not None:
                raise Escalation(
                    "relay", RuntimeError(report.gave_up), "gave up in the store's writer process"
                )
            await anyio.sleep(RELAY_WATCH_INTERVAL_S)

    def _batch_done(self, report: BatchReport) -> None:
        """Count the group commit; wake the couriers and the workflow feeder: there is work."""
        if not report.committed:
            self.metrics.commit_failures.inc()
            return
        if report.acceptances:
            self.metrics.commit_batch.observe(report.acceptances)
            if self.workflow is not None:
                self.workflow.feeder.wake()
            if self.inventory is not None:
                self.inventory.feeder.wake()
        if report.deliveries and self.outbound is not None:
            self.outbound.wake()

    def _files_committed(self) -> None:
        # A file's rows commit as a write, not an acceptance: `_batch_done` does not see them.
        if self.workflow is not None:
            self.workflow.feeder.wake()
        if self.inventory is not None:
            self.inventory.feeder.wake()

    def _attempted(self, partner: str, outcome: str, latency_s: float) -> None:
        """Count a delivery attempt; a settled one may be an order the threads wait on."""
        self.metrics.delivery_attempt(partner, outcome, latency_s)
        if outcome in ("delivered", "dead") and self.workflow is not None:
            self.workflow.feeder.wake()

    def _admin_app(self, store: Store) -> ASGIApp:
        async def store_open() -> bool:
            await store.outbox_backlog()
            return True

        async def broker_connected() -> bool:
            report = relay_report(store)
            return report is not None and report.statistics.connected

        async def erp_consuming() -> bool:
            return all(c.statistics().consuming for c in self.erp_consumers)

        def wake(partner_id: str | None) -> None:
            if self.outbound is not None:
                self.outbound.wake(partner_id)

        operator = self._operator = OperatorApi(
            store, self.config.partner_ids, wake, resubmitters(self.config, store)
        )
        admin = AdminApp(
            self.metrics.registry,
            {"store": store_open, "broker": broker_connected, "erp": erp_consuming},
            routes=[
                *operator_routes(operator),
                *trace_routes(TraceApi(store.workflow)),
                reload_route(self.reload),
            ],
        )
        token = self.config.admin.token
        secret = None if token is None else token.reveal().encode()
        console = build_console(
            store,
            admin,
            partners=lambda: self.config.partner_ids,
            registry=self.metrics.registry,
            couriers=self.outbound,
            erp_consumers=self.erp_consumers,
            token=secret,
            allowed_hosts=self.config.admin.allowed_hosts,
        )
        return guarded(
            admin, token=secret, allowed_hosts=self.config.admin.allowed_hosts, console=console
        )

    def _export_statistics(self, supervisor: Supervisor, store: Store, budget: BodyBudget) -> None:
        def runtime(field: str) -> Any:
            return lambda: float(getattr(supervisor.statistics(), field))

        # The relay's supervisor is in the writer process: its restarts come by the report,
        # and start from 0 in a new writer; the counts of earlier writers are kept here.
        relay_restarts = [0, 0]  # of the writers before this one; of this one, last read

        def restarts() -> float:
            report = relay_report(store)
            if report is not None:
                if report.restarts < relay_restarts[1]:
                    relay_restarts[0] += relay_restarts[1]
                relay_restarts[1] = report.restarts
            return float(supervisor.statistics().restarts + sum(relay_restarts))

        def relayed(field: str) -> Any:
            def read() -> float:
                report = relay_report(store)
                return 0.0 if report is None else float(getattr(report.statistics, field))

            return read

        def unroutable_keys() -> float:
            report = relay_report(store)
            return 0.0 if report is None else float(len(report.statistics.unroutable))

        def confirm_latency() -> LatencyTally | None:
            report = relay_report(store)
            return None if report is None else report.confirm_latency

        self.metrics.read_histogram_at_scrape(
            "gateway_relay_confirm_latency_seconds", "Publish-to-confirm latency", confirm_latency
        )

        def erp(field: str) -> Any:
            # The ERP ingress is built after this runs: read it when scraped.
            return lambda: float(getattr(self.erp.statistics(), field)) if self.erp else 0.0

        self.metrics.read_at_scrape(
            [
                ("gateway_actors_live", "gauge", "Live actors and services", runtime("live")),
                ("gateway_actors_passivated", "counter", "Passivations", runtime("passivated")),
                (
                    "gateway_actor_restarts",
                    "counter",
                    "Restarts of crashed actors and services (couriers, consumers, relay)",
                    restarts,
                ),
                (
                    "gateway_services_given_up",
                    "counter",
                    "Services stopped past their restart budget while the gateway ran on"
                    " (a partner's courier: its deliveries wait in the store); alert on it",
                    runtime("given_up"),
                ),
                (
                    "gateway_actor_dead_letters",
                    "counter",
                    "Messages the actor runtime dead-lettered (also in gateway_dead_letters)",
                    runtime("dead_letters"),
                ),
                (
                    "gateway_mailbox_depth",
                    "gauge",
                    "Messages waiting in mailboxes",
                    runtime("mailbox_depth"),
                ),
                (
                    "gateway_http_body_bytes_in_flight",
                    "gauge",
                    "Request body bytes held by webhooks in flight (room taken)",
                    lambda: float(budget.taken),
                ),
                (
                    "gateway_http_body_waiting",
                    "gauge",
                    "Webhook requests waiting for room among the body bytes in flight",
                    lambda: float(budget.waiting),
                ),
                ("gateway_relay_published", "counter", "Relay publishes", relayed("published")),
                ("gateway_relay_confirmed", "counter", "Broker confirms", relayed("confirmed")),
                ("gateway_relay_nacked", "counter", "Broker nacks", relayed("nacked")),
                ("gateway_relay_returned", "counter", "Unroutable returns", relayed("returned")),
                (
                    "gateway_relay_unpublishable",
                    "counter",
                    "Rows AMQP cannot carry, dead-lettered unsent",
                    relayed("unpublishable"),
                ),
                ("gateway_relay_reconnects", "counter", "Broker reconnects", relayed("reconnects")),
                (
                    "gateway_relay_unroutable_routing_keys",
                    "gauge",
                    "Routing keys whose latest publish no queue took (312 NO_ROUTE): alert above 0",
                    unroutable_keys,
                ),
                ("gateway_erp_accepted", "counter", "ERP messages kept", erp("accepted")),
                ("gateway_erp_replayed", "counter", "ERP redeliveries deduped", erp("replayed")),
                (
                    "gateway_erp_dead_lettered",
                    "counter",
                    "ERP messages dead-lettered as invalid",
                    erp("dead_lettered"),
                ),
                ("gateway_erp_requeued", "counter", "ERP messages requeued", erp("requeued")),
                (
                    "gateway_workflow_inputs_applied",
                    "counter",
                    "Inputs the purchase-order threads applied (replays not counted)",
                    lambda: float(self.workflow.feeder.applied if self.workflow else 0),
                ),
                (
                    "gateway_erp_consumer_sessions",
                    "counter",
                    "ERP consumer sessions started (first and every recovery)",
                    lambda: float(sum(c.statistics().sessions for c in self.erp_consumers)),
                ),
            ]
        )

    async def _sample_backlog(self, store: Store) -> None:
        samples = 0
        while True:
            if self.workflow is not None and samples % WORKFLOW_SAMPLE_EVERY == 0:
                await self.workflow.sample()
            if self.inventory is not None and samples % WORKFLOW_SAMPLE_EVERY == 0:
                await self.inventory.sample()
            samples += 1
            count, age = await store.outbox_backlog()
            self.metrics.outbox_backlog.set(count)
            self.metrics.outbox_oldest_age.set(age or 0.0)
            if self.outbound is not None:
                self.metrics.sample_deliveries(
                    await store.deliveries.backlog(), self.outbound.statistics()
                )
            self.metrics.sample_dead_letters(await store.dead_letter_book.counts())
            if (report := relay_report(store)) is not None:
                self.unroutable.saw(report.statistics.unroutable)
            await anyio.sleep(BACKLOG_SAMPLE_INTERVAL_S)


def retention_of(cfg: GatewayConfig) -> Retention:
    """How long the store keeps each kind of row: `[store]`'s settings (0 keeps them for ever,
    here too), and the X12 keys for the longest replay window a partner has."""
    return Retention(
        idempotency_s=cfg.store.idempotency_retention_s,
        outbox_s=cfg.store.outbox_retention_s,
        deliveries_s=cfg.store.delivery_retention_s,
        dead_letters_s=cfg.store.dead_letter_retention_s,
        closed_threads_s=cfg.store.closed_thread_retention_s,
        journal_s=cfg.store.workflow_journal_retention_s,
        inventory_s=cfg.store.inventory_retention_s,
        customer_orders_s=cfg.store.customer_order_retention_s,
        x12_s=cfg.store.x12_retention_s,
        x12_replay_window_s=max((p.edi.replay_window_s for p in cfg.partners), default=0),
    )


async def _serve_ingress(app: ASGIApp, cfg: GatewayConfig, *, task_status: TaskStatus[int]) -> None:
    await serve(
        app,
        host=cfg.http.host,
        port=cfg.http.port,
        task_status=task_status,
        backlog=cfg.http.backlog,
        timeout_keep_alive=cfg.http.keep_alive_s,
        limits=ListenerLimits(
            head_timeout_s=cfg.http.head_timeout_s,
            body_timeout_s=cfg.http.body_timeout_s,
            body_min_bytes_per_s=cfg.http.body_min_bytes_per_s,
            max_head_bytes=cfg.http.max_head_bytes,
            max_headers=cfg.http.max_headers,
            max_requests=cfg.http.max_concurrent_requests,
            max_connections=cfg.http.max_connections,
        ),
    )


async def _serve_admin(app: ASGIApp, cfg: GatewayConfig, *, task_status: TaskStatus[int]) -> None:
    await serve(app, host=cfg.admin.host, port=cfg.admin.port, task_status=task_status)


async def run_gateway(
    config: GatewayConfig,
    *,
    clock: Callable[[], float] = time.time,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Run a gateway until SIGINT or SIGTERM, then shut it down in order; SIGHUP reloads
    the configuration from `config_path`."""
    gateway = Gateway(config, clock=clock, config_path=config_path, environ=environ)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_on_signals, gateway, tg)
        await gateway.run()
        tg.cancel_scope.cancel()
    logger.info("gateway stopped")


async def _on_signals(gateway: Gateway, tg: TaskGroup) -> None:
    # SIGHUP is what operators and service managers send to reload (`systemctl reload`,
    # `kill -HUP`): the reload runs beside this loop, so a SIGTERM during it is not delayed.
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    logger.info("SIGHUP: reloading %s", gateway.config_path)
                    tg.start_soon(gateway.reload)
                    continue
                logger.info("signal %s: shutting down", signal.Signals(signum).name)
                gateway.stop()
                return
    finally:
        # Closing the receiver gave SIGHUP its default action back (kill): not during the drain.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def run_from_file(path: Path, environ: Mapping[str, str]) -> int:
    """Load the config and run the gateway; the `gateway run` command."""
    try:
        config = load_config(path, environ)
    except ConfigError as exc:
        for error in exc.errors:
            print(error.message)
        return 2  # a config error, as for every command (gateway/cli.py)
    configure_logging(config.log.level)
    # Until `run_gateway` listens for it, a SIGHUP must not kill a gateway that is starting.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    escalations: list[Escalation] = []
    try:
        anyio.run(
            partial(run_gateway, config, config_path=path, environ=environ),
            backend="asyncio",
            backend_options={"use_uvloop": True},
        )
    except* Escalation as group:
        escalations = _leaves(group)
    for escalation in escalations:
        # Restarting did not help: say which part gave up and why, on one line; whatever was
        # accepted is in the store for the next start.
        logger.critical("gateway stopped: %s", escalation, exc_info=escalation)
        print(f"gateway stopped: {escalation}", file=sys.stderr)
    return EXIT_ESCALATED if escalations else 0


def _leaves(group: BaseExceptionGroup[Escalation]) -> list[Escalation]:
    """The escalations in `group`, however deep the task groups nested them."""
    leaves: list[Escalation] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            leaves.extend(_leaves(error))
        else:
            leaves.append(error)
    return leaves
