"""`[workflow]`: the purchase-order thread's switch, bounds and per-supplier tolerances."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import DEMO, errors_of, partner, write

from gateway.config import load_config


def test_the_defaults_run_the_threads_with_strict_rules(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, partner()), {})

    assert cfg.workflow.enabled
    assert cfg.workflow.rules.quantity_percent == 0
    assert cfg.workflow.rules.ack_sla_hours == 24
    assert cfg.workflow.rules_for("acme") == cfg.workflow.rules


def test_a_supplier_override_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    text = (
        "[workflow.rules]\nquantity_percent = 2.0\nack_sla_hours = 48.0\n"
        "[workflow.partners.acme]\nquantity_percent = 5.0\n" + partner()
    )
    cfg = load_config(write(tmp_path, text), {})

    acme = cfg.workflow.rules_for("acme")
    assert (acme.quantity_percent, acme.ack_sla_hours) == (5.0, 48.0)
    assert cfg.workflow.rules_for("globex").quantity_percent == 2.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[workflow.rules]\nquantity_pct = 5\n", "[workflow]: rules.quantity_pct: unknown key"),
        (
            "[workflow.partners.acme]\nack_sla = 5\n",
            "[workflow]: partners.acme.ack_sla: unknown key",
        ),
        (
            "[workflow.rules]\nack_sla_hours = 0\n",
            "[workflow]: rules.ack_sla_hours: Expected `float` > 0",
        ),
        ("[workflow.partners.nobody]\nprice_percent = 1\n", "partners.nobody: unknown partner"),
        ("[workflow]\nfeed_batch = 0\n", "[workflow]: feed_batch: Expected `int` >= 1"),
        (
            "[erp]\npublish_events = false\n[workflow]\nenabled = true\n",
            "enabled: needs [erp] publish_events = true",
        ),
    ],
)
def test_a_mistake_in_workflow_is_reported_by_its_path(
    tmp_path: Path, text: str, expected: str
) -> None:
    errors = errors_of(write(tmp_path, text + partner()))

    assert any(expected in error for error in errors), errors


def test_without_a_workflow_section_unpublished_erp_events_are_not_an_error(
    tmp_path: Path,
) -> None:
    cfg = load_config(write(tmp_path, "[erp]\npublish_events = false\n" + partner()), {})

    assert not cfg.erp.publish_events


def test_the_annotated_example_sets_every_workflow_key() -> None:
    cfg = load_config(DEMO, {})

    assert cfg.workflow.enabled
    assert "acme" in cfg.workflow.partners
