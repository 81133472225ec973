"""Words of the alerts: Chinese by default, the work point named as 第三十五项."""

from __future__ import annotations

from duban_shared.events import StallReason, StallTransition, StallTransitionKind

_DIGITS = "零一二三四五六七八九"

REASON_WORDS = {
    StallReason.BLOCKED: "牵头或责任单位报告工作受阻",
    StallReason.SILENT: "牵头单位逾期未报送进展",
}


def chinese_number(n: int) -> str:
    """Write 1..99 in Chinese numerals (35 -> 三十五); other numbers stay Arabic."""
    if not 1 <= n <= 99:
        return str(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    head = "" if tens == 1 else _DIGITS[tens]
    return head + "十" + (_DIGITS[ones] if ones else "")


def stall_email(transition: StallTransition, agency_name: str) -> tuple[str, str]:
    """Return the subject and plain-text body of a stall email to one agency."""
    item = f"第{chinese_number(transition.work_point_number)}项"
    title = transition.work_point_title
    reason = REASON_WORDS.get(transition.reason, transition.reason.value)
    if transition.kind == StallTransitionKind.RECOVERED:
        subject = f"【督办】{item}“{title}”已恢复正常"
        lines = [
            f"{agency_name}:",
            "",
            f"您单位牵头的{item}“{title}”已恢复正常推进,此前的督办提醒解除。",
        ]
    else:
        subject = f"【督办提醒】{item}“{title}”进展停滞"
        lines = [
            f"{agency_name}:",
            "",
            f"您单位牵头的{item}“{title}”已被判定为停滞。",
            f"原因:{reason}。",
        ]
        if transition.silent_working_days is not None and transition.reason == StallReason.SILENT:
            lines.append(f"距上次报送已过 {transition.silent_working_days} 个工作日。")
        if transition.note:
            lines.append(f"报送说明:{transition.note}")
        lines += ["", "请尽快报送最新进展或说明困难。"]
    lines += ["", f"工作要点编号:{transition.work_point_id}", "—— 督办系统(自动发送,请勿回复)"]
    return subject, "\n".join(lines) + "\n"
