"""`gateway partners add ID --config FILE`: append a partner with a fresh secret, say what to send.

The partner's block is appended to the config file as written text (comments and layout of the
rest stay as they are). Its signing secret is new (`whsec_` + 32 random bytes, Standard
Webhooks) and never inline: it is written to `secrets/ID.whsec` beside the config (folder 0700,
file 0600) and referenced as `{ file = ... }`, or, with `--secret-env VAR`, referenced as
`{ env = "VAR" }` and printed once for the operator to put in the environment. The whole file is
then loaded as `gateway run` would load it; if that fails nothing is left behind (the file and
the secret are put back as they were) and every problem is printed. What to hand the partner
is printed last: the endpoint URLs, the secret, the signature scheme.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from canonical import DOCUMENT_TYPES
from canonical.errors import ConfigError
from gateway.config import PARTNER_ID_PATTERN, load_config
from gateway.config.base import join_host_port
from gateway.config.secrets import WHSEC_PREFIX
from protocols.http.ingress import WEBHOOK_PATH_PREFIX

__all__ = ["SECRET_BYTES", "new_secret", "partner_block", "run_partners_add"]

# Standard Webhooks allows 24 to 64; 32 is what Svix and the spec's examples use.
SECRET_BYTES = 32
SECRETS_FOLDER = "secrets"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def new_secret() -> str:
    """Return a fresh `whsec_...` signing secret."""
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def partner_block(
    partner_id: str, name: str, documents: Sequence[str], secret_reference: str
) -> str:
    """Return the `[[partners]]` TOML block for a new partner."""
    sends = ", ".join(f'"{d}"' for d in documents)
    return (
        f"\n[[partners]]                # added by `gateway partners add`\n"
        f'id = "{partner_id}"\n'
        f"name = {_toml_string(name)}\n"
        f"secrets = [{secret_reference}]\n"
        f"sends = [{sends}]\n"
    )


def run_partners_add(
    config_path: Path,
    partner_id: str,
    *,
    name: str | None = None,
    documents: Sequence[str] | None = None,
    secret_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The `gateway partners add` command; returns its exit status."""
    env = dict(os.environ if environ is None else environ)
    problem = _refusal(config_path, partner_id, documents, secret_env)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    sends = sorted(documents or DOCUMENT_TYPES)
    secret = new_secret()
    secret_file: Path | None = None
    if secret_env is not None:
        reference = f'{{ env = "{secret_env}" }}'
        env[secret_env] = secret
    else:
        relative = f"{SECRETS_FOLDER}/{partner_id}.whsec"
        secret_file = config_path.parent / relative
        reference = f'{{ file = "{relative}" }}'
    original = config_path.read_bytes()
    try:
        if secret_file is not None:
            _write_secret(secret_file, secret)
        with config_path.open("a", encoding="utf-8") as out:
            out.write("" if original.endswith(b"\n") else "\n")
            out.write(partner_block(partner_id, name or partner_id, sends, reference))
        config = load_config(config_path, env)
    except (ConfigError, OSError) as exc:
        config_path.write_bytes(original)
        if secret_file is not None:
            secret_file.unlink(missing_ok=True)
        errors = exc.errors if isinstance(exc, ConfigError) and exc.errors else ()
        for error in errors or [str(getattr(exc, "detail", exc))]:
            print(getattr(error, "message", error), file=sys.stderr)
        print(f"{config_path}: not changed", file=sys.stderr)
        return EXIT_FAILED
    base = f"http://{join_host_port(config.http.host, config.http.port)}"
    print(f"added partner {partner_id!r} to {config_path}")
    if secret_file is not None:
        print(f"secret written to {secret_file} (0600)")
    else:
        print(f"set {secret_env} in the gateway's environment to the secret below")
    print()
    print(f"Hand to {name or partner_id} (over a channel you trust for secrets):")
    print(f"  signing secret:   {secret}")
    print("  signature scheme: Standard Webhooks: headers webhook-id, webhook-timestamp and")
    print("                    webhook-signature = v1,base64(HMAC-SHA256(key, id.timestamp.body)),")
    print("                    key = the base64 after whsec_; webhook-id is the idempotency key")
    print("  content type:     application/json")
    print("  endpoints (POST), behind your public address for this listener:")
    for document in sends:
        print(f"    {base}{WEBHOOK_PATH_PREFIX}{partner_id}/{document}")
    return EXIT_OK


def _refusal(
    config_path: Path, partner_id: str, documents: Sequence[str] | None, secret_env: str | None
) -> str | None:
    """Why the command cannot start (usage), or None."""
    if not re.fullmatch(PARTNER_ID_PATTERN, partner_id):
        return f"{partner_id!r} is not a partner id (lowercase letters, digits, - and _)"
    unknown = sorted(set(documents or ()) - set(DOCUMENT_TYPES))
    if unknown:
        return f"unknown document types: {', '.join(unknown)} (known: {', '.join(DOCUMENT_TYPES)})"
    if secret_env is not None and not _ENV_NAME.fullmatch(secret_env):
        return f"{secret_env!r} is not an environment variable name"
    try:
        document = tomllib.loads(config_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return f"{config_path}: cannot read: {exc}"
    partners = document.get("partners", [])
    if any(isinstance(p, dict) and p.get("id") == partner_id for p in partners):
        return f"{config_path}: partner {partner_id!r} is already there"
    return None


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    # O_EXCL: an existing secret file (an earlier partner of that id) is never replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret + "\n")


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
