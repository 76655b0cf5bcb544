"""SFTP transport: a partner's server as a file source, and the gateway's hosted drop box.

`SftpSource` (client.py) implements the `FileSource` port over a partner's server with its host
key pinned and the egress guard applied; `DropBox` (dropbox.py) serves partners without a
server of their own, each confined to its own folder. Transport only: what a file means is the
intake's business.
"""

import warnings

with warnings.catch_warnings():
    # asyncssh 2.24 names cryptography's DSA types at import, which cryptography >= 47 warns
    # about; the gateway never offers or accepts DSA keys.
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
    import asyncssh  # noqa: F401 - imported here first, under the filter

from protocols.sftp.client import SftpSource
from protocols.sftp.dropbox import DropBox, DropBoxPartner
from protocols.sftp.endpoint import SftpEndpoint, SftpFolders
from protocols.sftp.errors import (
    SftpAuthRefused,
    SftpError,
    SftpFileTooLarge,
    SftpHostKeyRefused,
    SftpNameExhausted,
    SftpRefused,
    SftpUnavailable,
)
from protocols.sftp.names import is_listed_name, suffixed_names, temporary_name

__all__ = [
    "DropBox",
    "DropBoxPartner",
    "SftpAuthRefused",
    "SftpEndpoint",
    "SftpError",
    "SftpFileTooLarge",
    "SftpFolders",
    "SftpHostKeyRefused",
    "SftpNameExhausted",
    "SftpRefused",
    "SftpSource",
    "SftpUnavailable",
    "is_listed_name",
    "suffixed_names",
    "temporary_name",
]
