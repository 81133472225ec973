"""Agency contacts: the only place addresses live. Validated on the way in (email syntax, E.164
phone numbers, configured WeCom robots), kept in the order they are tried, masked wherever they
would be shown to someone other than the office (logs, spans)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from email_validator import EmailNotValidError, validate_email

from notifier.domain.phone import InvalidPhoneNumber, normalize_phone

Channel = Literal["email", "sms", "wecom"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "wecom")
MAX_PER_AGENCY = 20
CSV_COLUMNS = ("agency", "channel", "address", "label")


class Agency(Protocol):
    """An agency as the registry published it (the notifier's read model)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def name(self) -> str: ...

    @property
    def merged_into_id(self) -> uuid.UUID | None: ...


class ContactProblem(ValueError):
    """A contact that cannot be kept, with a stable code."""

    def __init__(self, code: str, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


@dataclass(frozen=True)
class ContactIn:
    """A contact as given: channel, address in any usual writing, an optional label."""

    channel: str
    address: str
    label: str | None = None


def normalize(
    contact: ContactIn, *, wecom_robots: Collection[str], region: str = "CN"
) -> ContactIn:
    """The contact as stored: a valid email, an E.164 mobile number, or a configured robot."""
    address = contact.address.strip()
    label = (contact.label or "").strip() or None
    if contact.channel == "email":
        try:
            address = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ContactProblem(
                "invalid_email", f"{address!r} is not an email address: {exc}"
            ) from exc
    elif contact.channel == "sms":
        try:
            address = normalize_phone(address, region)
        except InvalidPhoneNumber as exc:
            raise ContactProblem(
                "invalid_phone",
                f"{mask('sms', address)} is not a usable mobile number: {exc.reason}; write it "
                "as 13800138000 or +8613800138000.",
            ) from exc
    elif contact.channel == "wecom":
        if address not in wecom_robots:
            configured = ", ".join(sorted(wecom_robots)) or "none"
            raise ContactProblem(
                "unknown_wecom_robot",
                f"No WeCom robot named {address!r} is configured (configured: {configured}); "
                "robots and their webhook keys are set in the notifier's settings, contacts "
                "name them.",
            )
    else:
        raise ContactProblem(
            "unknown_channel",
            f"Channel {contact.channel!r} is not one of {', '.join(CHANNELS)}.",
        )
    if label is not None and len(label) > 60:
        raise ContactProblem("label_too_long", "A label has at most 60 characters.")
    return ContactIn(contact.channel, address, label)


def mask(channel: str, address: str) -> str:
    """An address as logs and spans may show it: enough to tell two apart, not to use one."""
    if channel == "email" and "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:2]}***@{domain}"
    if channel == "sms":
        digits = re.sub(r"\D", "", address)
        head = f"+{digits[:2]}" if address.startswith("+") else digits[:3]
        return f"{head}***{digits[-4:]}" if len(digits) > 6 else "***"
    return address  # a robot name is not personal data


def published(agency: Agency | None, agency_id: uuid.UUID) -> Agency:
    """The agency, if the registry published it and it was not merged away."""
    if agency is None:
        raise ContactProblem(
            "unknown_agency",
            f"The registry has published no agency {agency_id}; find ids with "
            "GET /v1/agencies?name=... on the registry (a new agency arrives within seconds).",
        )
    if agency.merged_into_id is not None:
        raise ContactProblem(
            "agency_merged",
            f"{agency.name} was merged into agency {agency.merged_into_id}; "
            "set the contacts there.",
            {"merged_into": str(agency.merged_into_id)},
        )
    return agency


def normalize_all(
    contacts: Iterable[ContactIn], *, wecom_robots: Collection[str]
) -> tuple[list[ContactIn], list[dict[str, object]]]:
    """Every contact normalized, and the problems (index, code, message) of those that are not."""
    normalized: list[ContactIn] = []
    problems: list[dict[str, object]] = []
    for index, contact in enumerate(contacts):
        try:
            normalized.append(normalize(contact, wecom_robots=wecom_robots))
        except ContactProblem as problem:
            problems.append({"index": index, "code": problem.code, "message": problem.message})
    return normalized, problems


@dataclass(frozen=True)
class CsvError:
    """A problem on one line of an imported file."""

    line: int
    code: str
    message: str


MAX_CSV_FIELD = 1000
"""Characters a CSV field may have; a longer one is no name, address or label."""


def _has_control_character(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") and c != "\t" for c in value)


def _csv_rows(text: str) -> tuple[list[list[str]], CsvError | None]:
    """Split CSV text into its non-blank rows, whatever the line endings (CRLF, LF or a bare
    CR); a line the csv module cannot read is a CsvError with its number, not an exception."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    rows: list[list[str]] = []
    try:
        for row in reader:
            if any(len(field) > MAX_CSV_FIELD for field in row):
                return [], CsvError(
                    reader.line_num,
                    "field_too_long",
                    f"A field is longer than {MAX_CSV_FIELD} characters; is this the contacts "
                    "file (agency,channel,address,label)?",
                )
            if row:
                rows.append(row)
    except csv.Error as exc:
        return [], CsvError(
            reader.line_num, "invalid_csv_line", f"The line cannot be read as CSV: {exc}."
        )
    return rows, None


def parse_csv(
    text: str, agencies: Iterable[Agency], *, wecom_robots: Collection[str]
) -> tuple[dict[uuid.UUID, list[ContactIn]], list[CsvError]]:
    """Read `agency,channel,address,label` rows (agency by registry name or id), all checked:
    the contacts per agency in file order, and every problem with its line number."""
    rows, unreadable = _csv_rows(text)
    if unreadable is not None:
        return {}, [unreadable]
    header = tuple(h.strip().lower() for h in rows[0]) if rows else ()
    if header[:3] != CSV_COLUMNS[:3]:
        return {}, [
            CsvError(
                1,
                "invalid_header",
                f"The first line must be the header {','.join(CSV_COLUMNS)} (label optional); "
                f"found {','.join(header) or 'nothing'}.",
            )
        ]
    by_name = {a.name: a for a in agencies}
    by_id = {a.id: a for a in by_name.values()}
    found: dict[uuid.UUID, list[ContactIn]] = {}
    errors: list[CsvError] = []
    for line, row in enumerate(rows[1:], start=2):
        values = {k: v.strip() for k, v in zip(header, row, strict=False) if k}
        bad = next((v for v in values.values() if _has_control_character(v)), None)
        if bad is not None:
            errors.append(
                CsvError(
                    line,
                    "control_character",
                    "A field holds a control character (e.g. NUL); remove it and save the file "
                    "again as plain UTF-8 text.",
                )
            )
            continue
        agency = by_name.get(values.get("agency", ""))
        if agency is None:
            try:
                agency = by_id.get(uuid.UUID(values.get("agency", "")))
            except ValueError:
                agency = None
        if agency is None:
            errors.append(
                CsvError(
                    line,
                    "unknown_agency",
                    f"No agency {values.get('agency', '')[:60]!r}: use its registry name, e.g. "
                    "市林业局, or its id.",
                )
            )
            continue
        if agency.merged_into_id is not None:
            errors.append(
                CsvError(line, "agency_merged", f"{agency.name} was merged into another agency.")
            )
            continue
        try:
            contact = normalize(
                ContactIn(
                    values.get("channel", ""), values.get("address", ""), values.get("label")
                ),
                wecom_robots=wecom_robots,
            )
        except ContactProblem as problem:
            errors.append(CsvError(line, problem.code, problem.message))
            continue
        found.setdefault(agency.id, []).append(contact)
    for agency_id, contacts in found.items():
        if len(contacts) > MAX_PER_AGENCY:
            errors.append(
                CsvError(
                    0,
                    "too_many_contacts",
                    f"{by_id[agency_id].name} has {len(contacts)} contacts; at most "
                    f"{MAX_PER_AGENCY}.",
                )
            )
    return found, errors
