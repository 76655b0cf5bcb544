"""One X12 file to what the intake needs: documents, problems, interchange keys, acks owed.

`decode_file` never raises: a file that cannot be split into interchanges is refused whole
(`decoding.refused`); an interchange whose envelope is at fault is rejected with its TA1 note
and nothing behind it is read; a group at fault has its sets rejected; a set the mapping
refuses is rejected alone with its AK3/AK4. Every other set becomes canonical documents with
their `Provenance`. The reading also lists each interchange's key (the store refuses a replay
with `replies.refuse_duplicate`, TA1 note 025) and the acknowledgements owed, which
`replies.render_acknowledgements` writes once the store has handed out control numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from canonical.documents import Document
from canonical.errors import FieldError
from canonical.files import FileDecoding, FileDocument, FileProblem, Provenance
from canonical.x12.acks import AckGroup, PendingAck
from canonical.x12.elements import SetReader, SetRejected
from canonical.x12.envelope import (
    GroupBlock,
    InterchangeBlock,
    SetBlock,
    read_envelope,
)
from canonical.x12.errors import X12Error
from canonical.x12.inbound_acks import read_functional_ack
from canonical.x12.notes import GroupOutcome, InterchangeKey, SegmentNote, SetOutcome, Ta1
from canonical.x12.profile import X12Profile
from canonical.x12.report import (
    GroupReport,
    InterchangeReport,
    SetReport,
    X12Problem,
    X12Reading,
)
from canonical.x12.sets import ACK_SETS, BY_SET_ID
from canonical.x12.syntax import split_interchanges

__all__ = ["decode_file"]


def decode_file(
    data: bytes, *, file_name: str, sha256: str, profile: X12Profile | None = None
) -> X12Reading:
    """Read one X12 file; never raises (see the module's docstring)."""
    profile = profile or X12Profile()
    try:
        raws = split_interchanges(data, profile.limits)
    except X12Error as exc:
        problem = X12Problem(
            code=exc.code, detail=exc.detail, segment=exc.segment, element=exc.element
        )
        return X12Reading(
            decoding=FileDecoding(refused=f"x12: {exc.detail} ({exc.where()})"),
            problems=(problem,),
            profile=profile,
        )
    reader = _FileReader(file_name, sha256, profile)
    seen: set[InterchangeKey] = set()
    for raw in raws:
        block = read_envelope(raw)
        if block.note == "000" and block.header.key in seen:
            block.note, block.detail = "025", "the file repeats this interchange control number"
            block.position = block.isa.position
        seen.add(block.header.key)
        if block.note == "000" and profile.check_interchange_ids:
            _check_ids(block, profile)
        reader.interchange(block)
    return reader.reading()


def _check_ids(block: InterchangeBlock, profile: X12Profile) -> None:
    header = block.header
    if (header.sender_qualifier, header.sender_id) != (
        profile.receiver_qualifier,
        profile.receiver_id,
    ):
        block.note, block.position = "006", block.isa.position
        block.detail = (
            f"ISA05/06 {header.sender_qualifier}/{header.sender_id} is not this partner's "
            f"{profile.receiver_qualifier}/{profile.receiver_id}"
        )
    elif (header.receiver_qualifier, header.receiver_id) != (
        profile.sender_qualifier,
        profile.sender_id,
    ):
        block.note, block.position = "008", block.isa.position
        block.detail = (
            f"ISA07/08 {header.receiver_qualifier}/{header.receiver_id} is not the gateway's "
            f"{profile.sender_qualifier}/{profile.sender_id}"
        )


class _FileReader:
    def __init__(self, file_name: str, sha256: str, profile: X12Profile) -> None:
        self.file_name = file_name
        self.sha256 = sha256
        self.profile = profile
        self.documents: list[FileDocument] = []
        self.file_problems: list[FileProblem] = []
        self.problems: list[X12Problem] = []
        self.reports: list[InterchangeReport] = []
        self.acks: list[PendingAck] = []
        self.functional_acks: list[GroupOutcome] = []

    def reading(self) -> X12Reading:
        refused = None
        if all(report.note != "000" for report in self.reports):
            # No envelope was sound: nothing in the file was read, the file is refused whole
            # (its TA1s are still owed).
            notes = ", ".join(sorted({report.note for report in self.reports}))
            refused = f"x12: every interchange rejected (TA1 {notes})"
        return X12Reading(
            decoding=FileDecoding(
                documents=tuple(self.documents),
                problems=tuple(self.file_problems),
                refused=refused,
            ),
            interchanges=tuple(self.reports),
            keys=tuple(r.key for r in self.reports),
            acknowledgements=tuple(self.acks),
            functional_acks=tuple(self.functional_acks),
            problems=tuple(self.problems),
            profile=self.profile,
        )

    def provenance(
        self, number: str, group: str | None = None, st: str | None = None
    ) -> Provenance:
        return Provenance(
            file=self.file_name,
            sha256=self.sha256,
            interchange=number,
            group=group,
            transaction_set=st,
        )

    def interchange(self, block: InterchangeBlock) -> None:
        header = block.header
        number = header.control_number
        groups: list[GroupReport] = []
        ack_groups: list[AckGroup] = []
        if block.note != "000":
            detail = block.detail or "envelope error"
            self.problems.append(
                X12Problem(
                    code=block.note, detail=detail, segment=block.position, interchange=number
                )
            )
            self.file_problems.append(
                FileProblem(
                    provenance=self.provenance(number),
                    reason="x12_interchange_rejected",
                    detail=f"TA1 {block.note}: {detail}",
                )
            )
        else:
            for group in block.groups:
                report, ack = self.group(block, group)
                groups.append(report)
                if ack is not None:
                    ack_groups.append(ack)
        self.reports.append(
            InterchangeReport(
                header=header,
                key=header.key,
                note=block.note,
                detail=block.detail,
                groups=tuple(groups),
            )
        )
        ta1 = None
        if block.has_transactions and (block.note != "000" or header.ack_requested == "1"):
            ta1 = Ta1(
                control_number=number,
                date=header.date,
                time=header.time,
                status="A" if block.note == "000" else "R",
                note=block.note,
            )
        mirrorable = (
            all((header.sender_qualifier.strip(), header.sender_id, header.receiver_id))
            and header.version.isdigit()
        )
        if (ta1 is not None or ack_groups) and mirrorable:
            self.acks.append(
                PendingAck(
                    interchange=header,
                    kind=self.profile.acknowledgement,
                    ta1=ta1,
                    groups=tuple(ack_groups),
                )
            )

    def group(
        self, block: InterchangeBlock, group: GroupBlock
    ) -> tuple[GroupReport, AckGroup | None]:
        header = group.header
        number = block.header.control_number
        for code in group.codes:
            self.problems.append(
                X12Problem(
                    code=code,
                    detail=_GROUP_CODES.get(code, "group error"),
                    segment=group.gs.position,
                    interchange=number,
                    group=header.control_number,
                )
            )
        is_ack = header.functional_id == "FA"
        sets: list[SetReport] = []
        outcomes: list[SetOutcome] = []
        acknowledges = None
        for block_set in group.sets:
            if is_ack or block_set.set_id in ACK_SETS:
                acknowledges = self.functional_ack(block, group, block_set) or acknowledges
                continue
            report, outcome = self.transaction_set(block, group, block_set)
            sets.append(report)
            outcomes.append(outcome)
        outcome_group = GroupOutcome(
            functional_id=header.functional_id,
            control_number=header.control_number,
            version=header.version,
            sets=tuple(outcomes),
            received=len(outcomes),
            codes=tuple(group.codes),
        )
        group_report = GroupReport(
            header=header,
            status=outcome_group.status,
            codes=tuple(group.codes),
            sets=tuple(sets),
            acknowledges=acknowledges,
        )
        if is_ack or not outcomes:
            return group_report, None  # never acknowledge an acknowledgement
        ack = AckGroup(
            application_sender=header.application_sender,
            application_receiver=header.application_receiver,
            outcome=outcome_group,
        )
        return group_report, ack

    def functional_ack(
        self, block: InterchangeBlock, group: GroupBlock, block_set: SetBlock
    ) -> GroupOutcome | None:
        try:
            outcome = read_functional_ack(SetReader(block_set, self.profile, block.delimiters))
        except X12Error as exc:
            self.problems.append(
                X12Problem(
                    code=exc.code,
                    detail=f"unreadable {block_set.set_id}: {exc.detail}",
                    segment=exc.segment,
                    element=exc.element,
                    interchange=block.header.control_number,
                    group=group.header.control_number,
                    transaction_set=block_set.control_number,
                )
            )
            return None
        self.functional_acks.append(outcome)
        return outcome

    def transaction_set(
        self, block: InterchangeBlock, group: GroupBlock, block_set: SetBlock
    ) -> tuple[SetReport, SetOutcome]:
        number = block.header.control_number
        provenance = self.provenance(number, group.header.control_number, block_set.control_number)
        st = block_set.segments[0]
        codes = list(block_set.codes)
        notes: tuple[SegmentNote, ...] = ()
        documents: tuple[Document, ...] = ()
        mapping = BY_SET_ID.get(block_set.set_id)
        problem: X12Problem | None = None
        where = (number, group.header.control_number, block_set.control_number)
        if codes:
            problem = X12Problem(
                code=codes[0], detail=_SET_CODES.get(codes[0], "set error"), segment=st.position,
                interchange=where[0], group=where[1], transaction_set=where[2],
            )  # fmt: skip
        elif mapping is None:
            codes = ["1"]
            problem = X12Problem(
                code="1",
                detail=f"transaction set {block_set.set_id!r} is not supported",
                segment=st.position,
                interchange=where[0],
                group=where[1],
                transaction_set=where[2],
            )
        else:
            try:
                reader = SetReader(block_set, self.profile, block.delimiters)
                documents = tuple(mapping.decode(reader))
            except (ArithmeticError, ValueError) as exc:
                # Not expected (the reader bounds and checks every value); should a mapping
                # still trip on one, the set is rejected, not the whole file.
                codes = ["5"]
                problem = X12Problem(
                    code="5",
                    detail=f"unreadable value: {type(exc).__name__}",
                    segment=st.position,
                    interchange=where[0],
                    group=where[1],
                    transaction_set=where[2],
                )
            except SetRejected as exc:
                codes, notes = ["5"], (exc.note,)
                problem = X12Problem(
                    code=exc.note.code,
                    detail=exc.detail,
                    segment=exc.segment,
                    element=exc.element,
                    interchange=where[0],
                    group=where[1],
                    transaction_set=where[2],
                )
            except X12Error as exc:
                codes = ["5"]
                problem = X12Problem(
                    code=exc.code, detail=exc.detail, segment=exc.segment, element=exc.element,
                    interchange=where[0], group=where[1], transaction_set=where[2],
                )  # fmt: skip
        accepted = problem is None and not group.codes
        if problem is not None:
            self.problems.append(problem)
        if problem is not None or group.codes:
            detail = problem.detail if problem is not None else "its functional group is in error"
            self.file_problems.append(
                FileProblem(
                    provenance=provenance,
                    reason="x12_set_rejected",
                    detail=f"{block_set.set_id} {block_set.control_number}: {detail}",
                    errors=tuple(_field_errors(problem)),
                )
            )
            documents_kept: tuple[Document, ...] = ()
        else:
            documents_kept = documents
            self.documents += [
                FileDocument(document=document, provenance=provenance) for document in documents
            ]
        outcome = SetOutcome(
            set_id=block_set.set_id,
            control_number=block_set.control_number,
            accepted=accepted,
            codes=tuple(codes) if not accepted else (),
            notes=notes,
            implementation=block_set.implementation,
        )
        report = SetReport(
            set_id=block_set.set_id,
            control_number=block_set.control_number,
            segment=st.position,
            accepted=accepted,
            codes=outcome.codes,
            notes=notes,
            documents=documents_kept,
        )
        return report, outcome


def _field_errors(problem: X12Problem | None) -> Iterator[FieldError]:
    if problem is None or problem.segment is None:
        return
    where = f"segment {problem.segment}"
    if problem.element is not None:
        where += f", element {problem.element}"
    yield FieldError(where, problem.detail)


_GROUP_CODES = {
    "3": "functional group trailer (GE) missing",
    "4": "GE02 does not match GS06",
    "5": "GE01 does not count the sets in the group",
    "6": "GS06 is not a control number",
    "19": "GS06 is not unique within the interchange",
}
_SET_CODES = {
    "2": "transaction set trailer (SE) missing",
    "3": "SE02 does not match ST02",
    "4": "SE01 does not count the segments ST..SE",
    "6": "ST01 is not a transaction set id",
    "7": "ST02 is not a control number",
    "23": "ST02 is not unique within the group",
}
