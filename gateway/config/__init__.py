"""Typed, immutable gateway configuration: one TOML file, loaded once at the composition root.

`load_config(path, environ)` returns a frozen `GatewayConfig` or raises `ConfigError` listing
every problem; `check_config` is `gateway config check`; `summarize` is its one-line answer.
"""

from gateway.config.base import MIB
from gateway.config.loader import check_config, load_config, summarize
from gateway.config.partners import PARTNER_ID_PATTERN, PartnerConfig, RateLimit
from gateway.config.secrets import AmqpUrl, Secret
from gateway.config.settings import (
    AdminSettings,
    AmqpSettings,
    GatewayConfig,
    HttpSettings,
    LogSettings,
    RuntimeSettings,
    StoreSettings,
)
from gateway.config.workflow import RuleOverrides, RuleSettings, WorkflowSettings

__all__ = [
    "MIB",
    "PARTNER_ID_PATTERN",
    "AdminSettings",
    "AmqpSettings",
    "AmqpUrl",
    "GatewayConfig",
    "HttpSettings",
    "LogSettings",
    "PartnerConfig",
    "RateLimit",
    "RuleOverrides",
    "RuleSettings",
    "RuntimeSettings",
    "Secret",
    "StoreSettings",
    "WorkflowSettings",
    "check_config",
    "load_config",
    "summarize",
]
