"""Words of the alerts: Chinese by default, the work point named as 第三十五项."""

from __future__ import annotations

from duban_shared.events import Level, StallReason, StallTransition, StallTransitionKind

_DIGITS = "零一二三四五六七八九"

REASON_WORDS = {
    StallReason.BLOCKED: "牵头或责任单位报告工作受阻",
    StallReason.OVERDUE: "已超过完成时限仍未办结",
    StallReason.SILENT: "牵头单位逾期未报送进展",
    StallReason.BEHIND_PACE: "进度或指标未达序时进度",
    StallReason.FLATLINE: "连续多次报送进度无变化",
    StallReason.DUE_SOON: "临近完成时限",
}

LEVEL_WORDS = {
    Level.GREEN: "绿色(正常)",
    Level.BLUE: "蓝色(预警)",
    Level.YELLOW: "黄色(滞后)",
    Level.RED: "红色(停滞)",
}

LEVEL_STATE = {
    Level.GREEN: "正常",
    Level.BLUE: "临近完成时限",
    Level.YELLOW: "进度滞后",
    Level.RED: "停滞",
}

LEVEL_SUBJECT = {
    Level.GREEN: "进展正常",
    Level.BLUE: "临近时限",
    Level.YELLOW: "进度滞后",
    Level.RED: "进展停滞",
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


def stall_email(
    transition: StallTransition, agency_name: str, ack_url: str | None = None
) -> tuple[str, str]:
    """Return the subject and plain-text body of a stall email to one agency."""
    item = f"第{chinese_number(transition.work_point_number)}项"
    title = transition.work_point_title
    level = LEVEL_WORDS[transition.level]
    lines = [f"{agency_name}:", ""]
    if transition.kind == StallTransitionKind.RECOVERED:
        subject = f"【督办】{item}“{title}”已恢复正常"
        lines.append(f"您单位牵头的{item}“{title}”已恢复正常推进,此前的督办提醒解除。")
    elif transition.kind == StallTransitionKind.CLOSED:
        subject = f"【督办】{item}“{title}”已办结销号"
        lines.append(f"您单位牵头的{item}“{title}”经督办协调部门审核,已办结销号。")
    else:
        subject = f"【督办提醒】{item}“{title}”{LEVEL_SUBJECT[transition.level]}"
        lines.append(f"您单位牵头的{item}“{title}”已被判定为{LEVEL_STATE[transition.level]}。")
        if transition.previous_level is not None:
            lines.append(f"督办颜色由{LEVEL_WORDS[transition.previous_level]}调整为{level}。")
        reasons = transition.reasons or ([transition.reason] if transition.reason else [])
        lines.append("原因:" + ";".join(REASON_WORDS[r] for r in reasons) + "。")
        if transition.silent_working_days is not None and StallReason.SILENT in reasons:
            lines.append(f"距上次报送已过 {transition.silent_working_days} 个工作日。")
        if transition.note:
            lines.append(f"报送说明:{transition.note}")
        lines += ["", "请尽快报送最新进展或说明困难。"]
        if ack_url:
            lines.append(f"确认已知悉请点击:{ack_url}")
    if transition.kind == StallTransitionKind.CLOSED and transition.note:
        lines.append(f"审核意见:{transition.note}")
    lines += ["", f"工作要点编号:{transition.work_point_id}", "—— 督办系统(自动发送,请勿回复)"]
    return subject, "\n".join(lines) + "\n"
