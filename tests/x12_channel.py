"""What the X12 file channel tests share: a partner's folder polled with the store's X12 port,
sample interchanges renumbered at will, and reads of the acks the gateway put back."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from files_support import PARTNER, SETTLE_S, Clock

from actors.files.formats import FileRule
from actors.files.intake import FileIntake
from actors.files.poller import ChannelPolicy, FilePoller, RoundReport
from actors.files.source import FileSource
from canonical.x12 import X12Profile, X12Reading, decode_file
from gateway.edi import StoreX12Files
from gateway.file_channels import StoreReceivedFiles
from gateway.store import Store
from protocols.files import LocalFolderSource

SAMPLES = Path(__file__).parent / "x12_samples"
# The supplier's interchange id is ACMESUPPLY, ours DISTCO (tests/x12_samples).
PROFILE = X12Profile(
    sender_qualifier="ZZ",
    sender_id="DISTCO",
    receiver_qualifier="ZZ",
    receiver_id="ACMESUPPLY",
)
RULES = (
    FileRule(pattern="*.x12", document_type="purchase_order_ack", format="x12", options=PROFILE),
)
WINDOW_S = 3600.0


def supplier_file(control: str = "000000100") -> str:
    """The sample 855 + 856 + 810 interchange, with ISA13/IEA02 = `control`."""
    text = (SAMPLES / "855_856_810.x12").read_text(encoding="latin-1")
    return text.replace("000000100", control)


class X12Channel:
    """One partner's folder and a poller with the X12 port, on a clock the test moves."""

    def __init__(
        self,
        root: Path,
        store: Store,
        *,
        source: FileSource | None = None,
        profile: X12Profile = PROFILE,
    ) -> None:
        self.folder = LocalFolderSource(root / "partner")
        self.clock = Clock()
        files = StoreReceivedFiles(store.files)
        self.x12 = StoreX12Files(store, replay_window_s=WINDOW_S)
        self.poller = FilePoller(
            source or self.folder,
            FileIntake(files, partner_id=PARTNER, channel="files", x12=self.x12),
            files,
            ChannelPolicy(
                partner_id=PARTNER,
                channel="files",
                rules=tuple(msgspec.structs.replace(rule, options=profile) for rule in RULES),
                spool_dir=root / "spool",
                settle_s=SETTLE_S,
            ),
            clock=self.clock,
        )
        self.poller.policy.spool_dir.mkdir(parents=True, exist_ok=True)

    def drop(self, name: str, text: str, *, mtime: int = 1_780_000_000) -> None:
        path = self.folder.folder("incoming") / name
        path.write_bytes(text.encode("latin-1"))
        os.utime(path, (mtime, mtime))

    async def settle(self) -> RoundReport:
        await self.poller.poll_once()
        self.clock.now += SETTLE_S
        return await self.poller.poll_once()

    def names(self, folder: str) -> list[str]:
        return sorted(os.listdir(self.folder.root / folder))

    def sent_back(self) -> list[X12Reading]:
        """Each file in the outbound folder, read as the partner reads it."""
        out = self.folder.folder("outbound")
        return [
            decode_file((out / name).read_bytes(), file_name=name, sha256="0" * 64)
            for name in sorted(os.listdir(out))
        ]
