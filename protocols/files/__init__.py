"""File transports that are not a network protocol: a folder on this machine."""

from protocols.files.local import LocalFolderSource

__all__ = ["LocalFolderSource"]
