"""Alert messages rendered from Jinja2 templates: email, SMS and WeCom markdown, in Chinese.

The words belong to the coordinating office, not to the code: they live in
`notifier/templates/*.j2` (vocabulary and small phrases in `_words.j2`), where an operator can
reword them without touching Python. This module decides everything else: which alerts go in
one message and in what order, which facts apply (a colour change, a silence count, how long an
escalated alert has waited), and what fits a channel's budget: SMS parts as counted by
`notifier.domain.sms_segments`, and the 4096 bytes of a WeCom robot message.

The renderer is a pure function of what it is given. It has no access to contacts, so no phone
number or address can leak into a message body; nor to a clock, so `now` is passed in when a
message should say how long an alert has waited.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from duban_shared.events import Level, StallReason, code_of
from duban_shared.numerals import chinese_code
from duban_shared.workdays import SHANGHAI
from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, Undefined
from jinja2.environment import TemplateModule

from notifier.adapters.channels.wecom import MARKDOWN_MAX_BYTES, fit_utf8
from notifier.domain.quoting import CUT_MARK, QUOTE_MARK, one_line, quote
from notifier.domain.sms_segments import analyze, truncate_to_segments

EVENTS: Final = frozenset(
    {"fired", "level_changed", "reminder", "escalated", "recovered", "closed"}
)
"""What happened to an alert that the message is about."""
RESOLVED_EVENTS: Final = frozenset({"recovered", "closed"})
ROLES: Final = ("lead", "co", "office")
"""How the recipient relates to the alerts: leads, co-responsible, or the coordinating office."""

_SEVERITY = {reason: i for i, reason in enumerate(StallReason)}  # the enum lists most severe first
_STATUS_ORDER = ("red", "yellow", "blue", "green", "recovered", "closed")
_LINK = re.compile(r"https?://[^\s<>\"'()\[\]`*\\]+")
# Characters WeCom markdown would act on, replaced by full-width look-alikes that read the same
# in Chinese text; line breaks are folded so a value cannot start a heading or a quote.
_MARKDOWN_INERT = str.maketrans(
    {
        "<": "＜",
        ">": "＞",
        "[": "［",
        "]": "］",
        "*": "＊",
        "`": "｀",
        "#": "＃",
        "\\": "＼",
        "\r": " ",
        "\n": " ",
    }
)
# An alert SMS names 第…项, so it is UCS-2 anyway and "…" costs one unit (counting is exact
# either way: every fit is checked with `analyze` on the final text).
_ELLIPSIS = "…"


@dataclass(frozen=True)
class AlertView:
    """One alert (one stall episode of one work point) as a message tells it.

    Only what a message may say: names, never contacts. `ack_url` is the signed one-click
    acknowledgement link, None once the alert is resolved (a resolved alert cannot be
    acknowledged, so a link given for a recovered or closed event is not shown). `note` is
    someone else's text (the reporting agency's, or the office's review of a closure): it is
    only ever shown quoted and inert (`notifier.domain.quoting`), under `note_author`'s name
    when the sender knows who wrote it.
    """

    work_point_id: str
    number: int
    """The work point's ordinal in its plan: digests list by it within a colour."""
    title: str
    level: Level
    previous_level: Level | None
    reasons: tuple[StallReason, ...]
    event: str
    silent_working_days: int | None
    note: str | None
    lead_agencies: tuple[str, ...]
    fired_at: datetime
    ack_url: str | None
    note_author: str | None = None

    @property
    def code(self) -> str:
        """The work point's code as messages name it (the end of its id): 第三十五项 for '35',
        第3.2项 for '3.2'."""
        return code_of(self.work_point_id)

    def __post_init__(self) -> None:
        """Refuse what would make a wrong message rather than send one."""
        if self.event not in EVENTS:
            raise ValueError(f"unknown alert event {self.event!r}; one of {sorted(EVENTS)}")
        if self.fired_at.tzinfo is None:
            raise ValueError("fired_at must be an aware datetime")
        if self.ack_url is not None and not _LINK.fullmatch(self.ack_url):
            # Spaces, brackets or quotes would break the link in SMS clients and in markdown.
            raise ValueError(f"ack_url is not a plain http(s) link: {self.ack_url!r}")

    @property
    def resolved(self) -> bool:
        """Whether the alert ended (recovered or closed) with this event."""
        return self.event in RESOLVED_EVENTS


@dataclass(frozen=True)
class Rendered:
    """One message in every form a channel needs.

    `sms_has_link` is False when the SMS carries no acknowledgement link: there was none, or it
    could not fit `max_sms_segments` parts even with everything else shortened (a link is
    never cut: half a signed link is worse than none, and the email still has it).
    """

    subject: str
    text: str
    sms: str
    sms_segments: int
    markdown: str
    sms_has_link: bool


class _Verbatim(str):
    """A value that goes into markdown as it is: a link already checked by `AlertView`."""

    __slots__ = ()


def _markdown_value(value: Any) -> Any:
    """Finalize every value printed by a markdown template: inert unless known to be safe.

    Escaping by default (rather than a filter each template must remember) means an operator's
    edited template cannot let an agency's note inject a link or a coloured line into a
    group chat. HTML autoescaping would not do: WeCom shows `&lt;` as it is.
    """
    if isinstance(value, _Verbatim | Undefined):
        return value  # an Undefined stays one, so StrictUndefined still raises
    return str(value).translate(_MARKDOWN_INERT)


def _one_line(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _cut(text: str, keep: int) -> str:
    """The first `keep` characters with an ellipsis, or nothing when none are kept."""
    if keep >= len(text):
        return text
    return text[:keep].rstrip() + _ELLIPSIS if keep > 0 else ""


def _largest(fits: Callable[[int], bool], high: int) -> int | None:
    """The largest k in 0..high with fits(k), where fits holds up to some k and fails above."""
    if not fits(0):
        return None
    low = 0
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _fit_sms(
    build: Callable[[int, bool], str], high: int, max_segments: int, has_link: bool
) -> tuple[str, bool]:
    """The fullest text within `max_segments` parts; with the link while it can be kept.

    `build(k, with_link)` makes the text keeping `k` (0..high) of what may be shortened. The
    link sits at the end (a handset's link detection runs to the next space, so text after a
    link could be swallowed into it), so the text is shortened in the middle by a search on
    the same counting as `analyze`; `truncate_to_segments` cuts only the end, and is the last
    resort when even the shortest text is too long.
    """

    def fitting(with_link: bool) -> str | None:
        k = _largest(lambda k: analyze(build(k, with_link)).segments <= max_segments, high)
        return None if k is None else build(k, with_link)

    if has_link and (text := fitting(True)) is not None:
        return text, True
    if (text := fitting(False)) is not None:
        return text, False
    return truncate_to_segments(build(0, False), max_segments), False


def _fit_markdown(build: Callable[[int], str], high: int) -> str:
    """The fullest markdown within the robot's byte limit (`build(k)` keeps k of 0..high)."""
    k = _largest(lambda k: len(build(k).encode()) <= MARKDOWN_MAX_BYTES, high)
    return fit_utf8(build(0)) if k is None else build(k)


def _view(alert: AlertView, now: datetime | None) -> dict[str, Any]:
    """What the templates see of one alert: plain values, no decisions left to them."""
    resolved = alert.resolved
    reasons = sorted(alert.reasons, key=lambda r: _SEVERITY.get(r, len(_SEVERITY)))
    waited = (
        max(now - alert.fired_at, timedelta(0))
        if now is not None and alert.event == "escalated"
        else None
    )
    return {
        "work_point_id": alert.work_point_id,
        "number": alert.number,
        "code": alert.code,
        "code_cn": chinese_code(alert.code),
        # The name templates reworded before codes existed use: the same words.
        "number_cn": chinese_code(alert.code),
        "title": alert.title,
        "level": str(alert.level),
        "previous_level": None if alert.previous_level is None else str(alert.previous_level),
        "colour_changed": not resolved
        and alert.previous_level is not None
        and alert.previous_level != alert.level,
        "status": alert.event if resolved else str(alert.level),
        "resolved": resolved,
        "event": alert.event,
        # Unknown reasons stay in (last) so the words' lookup fails loudly.
        "reasons": [str(r) for r in reasons],
        "silent_days": alert.silent_working_days
        if not resolved and StallReason.SILENT in alert.reasons
        else None,
        # The note only as quoted lines: a template cannot print what the agency wrote as is.
        "note_lines": quote(alert.note),
        "note_line": one_line(alert.note),
        "note_by": None if alert.event == "closed" else alert.note_author,
        "lead_agencies": list(alert.lead_agencies),
        "fired_at": alert.fired_at.astimezone(SHANGHAI),
        "waited_days": None if waited is None else waited.days,
        "waited_hours": None if waited is None else int(waited.total_seconds() // 3600),
        "ack_url": None if resolved or alert.ack_url is None else _Verbatim(alert.ack_url),
    }


def _call(parts: TemplateModule, macro: str, *args: Any) -> str:
    """Call one of a template's macros: the SMS is assembled from named parts (see the file)."""
    try:
        function = getattr(parts, macro)
    except AttributeError:
        raise LookupError(f"template {parts.__name__} lacks the macro {macro!r}") from None
    return str(function(*args))


def _urgency(view: dict[str, Any]) -> tuple[int, int]:
    """Red, yellow, blue, then the resolved; in plan order within each (unknown ones last)."""
    status = view["status"]
    rank = _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)
    return rank, view["number"]


class Renderer:
    """Renders alert messages from one set of templates.

    Two environments share the loader. Text (email, SMS) is not escaped at all: HTML escaping
    would turn a note's `&` into `&amp;` in a plain-text email; the note reaches the templates
    already quoted and inert instead (`notifier.domain.quoting`). Markdown escapes every printed
    value for WeCom by default (see `_markdown_value`). Both are StrictUndefined, so a misspelt
    variable or a level without words stops the message instead of sending a blank.
    """

    def __init__(self, loader: BaseLoader | None = None) -> None:
        """`loader` lets an operator's templates replace the packaged ones (e.g. a ChoiceLoader)."""
        options: dict[str, Any] = {
            "loader": loader or PackageLoader("notifier", "templates"),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        self.text_env = Environment(autoescape=False, **options)  # noqa: S701 (plain text)
        self.markdown_env = Environment(
            autoescape=False,  # noqa: S701 (WeCom markdown: escaped by finalize instead)
            finalize=_markdown_value,
            **options,
        )

    def render(
        self,
        alerts: Sequence[AlertView],
        *,
        recipient_name: str,
        role: str,
        max_sms_segments: int = 2,
        now: datetime | None = None,
        digest_url: str | None = None,
    ) -> Rendered:
        """One message about `alerts` to one recipient: a single alert, or a digest of several.

        `now` lets an escalation say how long the alert has waited; `digest_url`, a link that
        acknowledges a whole digest, is what a digest SMS carries (else the most urgent alert's
        own link, named as such).
        """
        if not alerts:
            raise ValueError("nothing to render: no alerts")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {list(ROLES)}")
        if max_sms_segments < 1:
            raise ValueError("max_sms_segments must be at least 1")
        if digest_url is not None and not _LINK.fullmatch(digest_url):
            raise ValueError(f"digest_url is not a plain http(s) link: {digest_url!r}")
        views = sorted((_view(a, now) for a in alerts), key=_urgency)
        context: dict[str, Any] = {"recipient_name": recipient_name, "role": role}
        if len(views) == 1:
            return self._single(context | {"a": views[0]}, max_sms_segments)
        return self._digest(context | {"items": views}, max_sms_segments, digest_url)

    def _single(self, context: dict[str, Any], max_sms: int) -> Rendered:
        view = context["a"]
        subject = _one_line(self.text_env.get_template("alert.subject.j2").render(context))
        text = self.text_env.get_template("alert.txt.j2").render(context)

        parts = self.text_env.get_template("alert.sms.j2").make_module(context)
        head, state = _call(parts, "item"), _call(parts, "state")
        details = _call(parts, "details")
        title, note = view["title"], view["note_line"]
        url = view["ack_url"]

        def sms(keep: int, with_link: bool) -> str:
            # keep counts the title's characters first, then the details', then the note's: the
            # note goes first, then the details. The note is cut inside its quotation marks.
            shown = _cut(title, keep)
            rest = keep - len(title)
            more = _cut(details, rest) if rest > 0 else ""
            said = _cut(note, rest - len(details)) if rest > len(details) else ""
            tail = (
                _call(parts, "link", url) if with_link else _call(parts, "no_link", url is not None)
            )
            quoted = _call(parts, "quote", said)
            return head + _call(parts, "title", shown) + state + more + quoted + tail

        high = len(title) + len(details) + len(note)
        sms_text, has_link = _fit_sms(sms, high, max_sms, url is not None)

        md = self.markdown_env.get_template("alert.md.j2")
        lines: list[str] = view["note_lines"]

        def markdown_with(shown: int) -> str:
            kept = lines[:shown] + ([QUOTE_MARK + CUT_MARK] if shown < len(lines) else [])
            return md.render(context | {"subject": subject, "note_lines": kept})

        markdown = _fit_markdown(markdown_with, len(lines))
        return Rendered(subject, text, sms_text, analyze(sms_text).segments, markdown, has_link)

    def _digest(self, context: dict[str, Any], max_sms: int, digest_url: str | None) -> Rendered:
        views: list[dict[str, Any]] = context["items"]
        if all(v["resolved"] for v in views):
            tag = "resolved"
        elif any(v["event"] == "escalated" for v in views):
            tag = "escalation"
        else:
            tag = "alert"
        by_status = Counter(v["status"] for v in views)
        counts = [(s, by_status[s]) for s in _STATUS_ORDER if by_status[s]]
        escalated = sum(v["event"] == "escalated" for v in views)
        context = context | {"tag": tag, "counts": counts, "escalated": escalated}
        subject = _one_line(self.text_env.get_template("digest.subject.j2").render(context))
        text = self.text_env.get_template("digest.txt.j2").render(context)

        parts = self.text_env.get_template("digest.sms.j2").make_module(context)
        head = _call(parts, "head")
        top = next((v for v in views if v["ack_url"] is not None), None)
        url = digest_url or (top["ack_url"] if top else None)

        def sms(shown: int, with_link: bool) -> str:
            if with_link:
                tail = _call(parts, "link", url, None if digest_url else top)
            else:
                tail = _call(parts, "no_link", url is not None)
            return head + _call(parts, "items_", shown) + tail

        sms_text, has_link = _fit_sms(sms, len(views), max_sms, url is not None)

        md = self.markdown_env.get_template("digest.md.j2")
        markdown = _fit_markdown(
            lambda shown: md.render(context | {"subject": subject, "shown": shown}), len(views)
        )
        return Rendered(subject, text, sms_text, analyze(sms_text).segments, markdown, has_link)


@cache
def default_renderer() -> Renderer:
    """The renderer with the packaged templates (loaded once, then cached by Jinja)."""
    return Renderer()


def render(
    alerts: Sequence[AlertView],
    *,
    recipient_name: str,
    role: str,
    max_sms_segments: int = 2,
    now: datetime | None = None,
    digest_url: str | None = None,
) -> Rendered:
    """Render one message about `alerts` with the packaged templates (see `Renderer.render`)."""
    return default_renderer().render(
        alerts,
        recipient_name=recipient_name,
        role=role,
        max_sms_segments=max_sms_segments,
        now=now,
        digest_url=digest_url,
    )
