"""What an SFTP operation can fail with, each error carrying a machine-readable reason.

Two kinds, because the caller treats them differently: `SftpUnavailable` (the server did not
answer, the connection dropped, an operation ran out of time) is worth trying again on the
next round; `SftpRefused` (the host key is not the pinned one, the login was refused) will fail
the same way until someone changes the configuration, and must be shown to an operator. The
egress guard's own `EgressRefused` (protocols/http/egress.py) is raised as it is.
"""

from __future__ import annotations

from canonical.errors import GatewayError

__all__ = [
    "SftpAuthRefused",
    "SftpError",
    "SftpFileTooLarge",
    "SftpHostKeyRefused",
    "SftpNameExhausted",
    "SftpRefused",
    "SftpUnavailable",
]


class SftpError(GatewayError):
    """Base of every error the SFTP client and drop box raise on purpose."""

    status, reason, title = 502, "sftp-failed", "SFTP operation failed"


class SftpUnavailable(SftpError):
    """No answer: connection refused or dropped, or an operation ran past its time bound."""

    status, reason, title = 503, "sftp-unavailable", "SFTP server unavailable"


class SftpRefused(SftpError):
    """The server was reached and refused, or was not the server we pinned: not retried."""

    status, reason, title = 502, "sftp-refused", "SFTP connection refused"


class SftpHostKeyRefused(SftpRefused):
    """The server's host key is not the one pinned in the partner's config (unknown or changed)."""

    status, reason, title = 502, "sftp-host-key-refused", "SFTP host key not the pinned one"


class SftpAuthRefused(SftpRefused):
    """The server refused the login (wrong key, wrong password, unknown user)."""

    status, reason, title = 502, "sftp-auth-refused", "SFTP login refused"


class SftpFileTooLarge(SftpError, ValueError):
    """A file is larger than the bound for it; nothing of it is kept.

    A `ValueError` as well, which is what the `FileSource` port promises for `fetch`.
    """

    status, reason, title = 413, "sftp-file-too-large", "File too large"


class SftpNameExhausted(SftpError):
    """Every suffixed name for a move or a put is taken (the suffix count is bounded)."""

    status, reason, title = 409, "sftp-name-exhausted", "No free name in the target folder"
