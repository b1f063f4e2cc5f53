"""Dispatch rules without I/O: what a checkpoint alert means for the grid worker.

Each alert becomes one task, identified by the fact it reports (not by the message that
carried it), so a re-emitted alert or a redelivered message never makes a second task.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridcare.shared.events import PermitOverdue, QuarantineBreachAttempted

BREACH_WITHIN = timedelta(minutes=15)  # someone held in quarantine is trying to get out
OVERDUE_WITHIN = timedelta(hours=1)  # a resident is not back from an outing permit

# Screening statuses as a grid worker reads them (events.HOLDING_STATUSES).
STATUS_ZH = {
    "home_quarantine": "居家隔离",
    "central_quarantine": "集中隔离",
    "confirmed": "确诊",
    "suspected": "疑似",
    "fever_unexcluded": "发热未排除",
    "close_contact": "密切接触者",
}
STATUS_EN = {
    "home_quarantine": "home quarantine",
    "central_quarantine": "central quarantine",
    "confirmed": "confirmed case",
    "suspected": "suspected case",
    "fever_unexcluded": "fever not yet excluded",
    "close_contact": "close contact",
}


def when(t: datetime) -> str:
    """A time as a worker reads it, in the offset it was reported with."""
    offset = t.strftime("%z")  # +0800
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset not in ("", "+0000") else "UTC"
    return f"{t:%Y-%m-%d %H:%M} {zone}"


def breach_ref(ev: QuarantineBreachAttempted) -> str:
    """The fact: which scan (at which gate) or which door event (of which household).

    Scan ids are unique per gate and door event ids per sensor, hence the qualifier."""
    where = (ev.gate_id if ev.via == "gate" else ev.household_id) or ev.compound_id
    return f"{ev.via}:{where}:{ev.ref}"


def overdue_ref(ev: PermitOverdue) -> str:
    """The fact: this permit's holder went out at this time and is not back.

    A permit with several uses can be overdue once per outing, hence the exit time."""
    return f"permit:{ev.permit_id}:{ev.exited_at.astimezone(UTC).isoformat()}"


def breach_summary(ev: QuarantineBreachAttempted, household_id: str | None) -> dict[str, str]:
    zh_status = STATUS_ZH.get(ev.status, ev.status)
    en_status = STATUS_EN.get(ev.status, ev.status)
    t = when(ev.at)
    if ev.via == "door":
        hh = household_id or ev.household_id or "?"
        return {
            "zh": f"隔离户开门：{zh_status}住户 {hh} 的房门于 {t} 被打开（门磁报警），"
            "请立即联系并上门核查",
            "en": f"Quarantine breach: the door of household {hh} ({en_status}) "
            f"opened at {t} (door sensor); contact them and check on site at once",
        }
    who = ev.person_id or "?"
    hh_zh = f"（住户 {household_id}）" if household_id else " "
    hh_en = f" (household {household_id})" if household_id else ""
    gate = ev.gate_id or "?"
    return {
        "zh": f"隔离人员外出被拦：{zh_status}人员 {who}{hh_zh}于 {t} 在 {gate} 门试图离开，"
        "已被拒绝通行，请立即联系并核查",
        "en": f"Quarantine breach: {who}{hh_en}, held in {en_status}, tried to leave "
        f"through gate {gate} at {t} and was stopped; contact them and check at once",
    }


def overdue_summary(ev: PermitOverdue, hours: str) -> dict[str, str]:
    out, due = when(ev.exited_at), when(ev.return_by)
    return {
        "zh": f"逾期未归：居民 {ev.holder_id}（住户 {ev.household_id}）持出行证 {ev.permit_id} "
        f"于 {out} 外出，应于 {due} 前返回，至今未归，请在{hours}小时内联系核实",
        "en": f"Overdue return: resident {ev.holder_id} (household {ev.household_id}) went "
        f"out at {out} on permit {ev.permit_id}, was due back by {due} and is not back; "
        f"contact them within {hours} hour{'' if hours == '1' else 's'}",
    }
