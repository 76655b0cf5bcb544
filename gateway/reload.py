"""Hot reload: what a new configuration file changes, and what a running gateway may take.

`gateway run` reloads on SIGHUP, and on `POST /config/reload` (admin listener): the file is read
and validated in full (the same `load_config` as at start, every error found at once), then
compared with the running configuration. The parts a running gateway takes without a restart are
swapped in together, in one step of the event loop (`Gateway.reload` in gateway/app.py), so no
request sees half of a new configuration:

- `[[partners]]`: added, removed or changed (secrets, documents, limits, outbound channels and
  their delivery rules, pull tokens, file channels and mappings, X12 profiles);
- `[[customers]]`: the customer API's accounts and keys;
- `[erp] subscriptions`: which partners get the ERP's documents;
- `[workflow] rules` and `[workflow.partners]`: tolerances and deadlines; the timers already
  armed move by the deadline's difference (actors/workflow/retiming.py);
- `[log] level`.

Everything else (listeners' addresses and limits, the store, the broker, the ERP's queues, the
runtime's bounds, the drop box's listener) concerns a listener, a connection or a file the
process holds open: a change there is reported as waiting for a restart, and the running
gateway keeps its current value, as PostgreSQL's `pending_restart` does. A file with errors is
refused whole; the running configuration stays as it was.

Work already under way finishes on the configuration it started with: a webhook verified with
the old secret is accepted under the old partner settings, an attempt in flight completes at the
old URL, a file being taken in is committed under the old mapping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonical.errors import FieldError, GatewayError
from gateway.config import GatewayConfig
from protocols.http.router import json_response

__all__ = ["ReloadOutcome", "ReloadPlan", "ReloadRefused", "plan_reload", "reload_route"]

# The admin listener's route (gateway/admin.py documents it).
RELOAD_PATH = "/config/reload"


class ReloadOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one reload did: the admin endpoint's answer and the log's summary."""

    # False when the file was refused (`errors` says why): nothing changed.
    applied: bool
    # Counts applied reloads since start (0: the configuration the gateway started with).
    generation: int
    changes: tuple[str, ...] = ()
    # Changed settings the running gateway keeps until it is restarted.
    pending_restart: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


class ReloadRefused(GatewayError):
    """The file was refused: `errors` holds each problem, located in the file."""

    status, reason, title = 422, "config-refused", "Configuration refused; the running one is kept"


def reload_route(reload: Callable[[], Awaitable[ReloadOutcome]]) -> Route:
    """`POST /config/reload`: 200 with the outcome, or 422 problem+json listing every error."""

    async def endpoint(request: Request) -> Response:
        outcome = await reload()
        if not outcome.applied:
            raise ReloadRefused(
                f"{len(outcome.errors)} problem(s); configuration {outcome.generation} runs on",
                errors=[FieldError("config", error) for error in outcome.errors],
            )
        return json_response(msgspec.structs.asdict(outcome))

    return Route(RELOAD_PATH, endpoint, methods=["POST"])


class ReloadPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a new file changes in a running gateway: `config` is what it will run on."""

    # The new file's reloadable parts over the running configuration's other parts.
    config: GatewayConfig
    # Partners added, removed or changed: their couriers and file channels start again.
    partners: frozenset[str]
    changes: tuple[str, ...]
    pending_restart: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.changes


def plan_reload(running: GatewayConfig, new: GatewayConfig) -> ReloadPlan:
    """Compare `new` with the `running` configuration: what to swap, what waits for a restart."""
    before = {p.id: p for p in running.partners}
    after = {p.id: p for p in new.partners}
    changes: list[str] = []
    for pid in sorted(after.keys() - before.keys()):
        changes.append(f"partner {pid}: added")
    for pid in sorted(before.keys() - after.keys()):
        changes.append(f"partner {pid}: removed")
    for pid in sorted(before.keys() & after.keys()):
        fields = list(_differing(before[pid], after[pid]))
        if fields:
            changes.append(f"partner {pid}: {', '.join(fields)} changed")
    partners = frozenset(
        pid for pid in before.keys() | after.keys() if before.get(pid) != after.get(pid)
    )
    if running.customers != new.customers:
        changes.append("customer accounts changed")
    if running.erp.subscriptions != new.erp.subscriptions:
        changes.append("[erp] subscriptions changed")
    if (running.workflow.rules, running.workflow.partners) != (
        new.workflow.rules,
        new.workflow.partners,
    ):
        changes.append("[workflow] rules changed")
    if running.log != new.log:
        changes.append(f"[log] level {running.log.level} -> {new.log.level}")
    config = msgspec.structs.replace(
        running,
        partners=new.partners,
        customers=new.customers,
        erp=msgspec.structs.replace(running.erp, subscriptions=new.erp.subscriptions),
        workflow=msgspec.structs.replace(
            running.workflow, rules=new.workflow.rules, partners=new.workflow.partners
        ),
        log=new.log,
    )
    pending = tuple(_pending_restart(config, new))
    return ReloadPlan(
        config=config, partners=partners, changes=tuple(changes), pending_restart=pending
    )


def _pending_restart(kept: GatewayConfig, new: GatewayConfig) -> Iterator[str]:
    """The settings `new` changes that the running gateway keeps: `[section] field` each."""
    for section in msgspec.structs.fields(GatewayConfig):
        name = section.name
        old_value, new_value = getattr(kept, name), getattr(new, name)
        if old_value == new_value:
            continue
        if isinstance(old_value, msgspec.Struct) and isinstance(new_value, msgspec.Struct):
            for field in _differing(old_value, new_value):
                yield f"[{name}] {field}"
        else:
            yield f"[{name}]"


def _differing(old: msgspec.Struct, new: msgspec.Struct) -> Iterator[str]:
    """The names of the fields of two Structs of one type that differ (secrets compare by
    value, never shown)."""
    for field in msgspec.structs.fields(type(old)):
        if getattr(old, field.name) != getattr(new, field.name):
            yield field.encode_name
