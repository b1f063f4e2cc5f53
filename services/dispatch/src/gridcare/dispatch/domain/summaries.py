"""What a grid worker reads about a task, in Chinese and English, on the local clock."""

from __future__ import annotations

from datetime import date, datetime

from gridcare.shared.localtime import reads

from .tasks import hours


def fever(
    person_id: str,
    gate_id: str | None,
    temperature_c: float | None,
    observed_at: datetime | None,
    zone: str | None,
) -> dict[str, str]:
    t = f"{temperature_c:.1f}" if temperature_c is not None else "?"
    gate = gate_id or "?"
    at = reads(observed_at, zone)
    zh_at, en_at = (f"于 {at} ", f" at {at}") if at else ("", "")
    h = hours("fever_follow_up")
    return {
        "zh": f"发热随访：居民 {person_id} {zh_at}在 {gate} 门测得体温 {t}°C，"
        f"请在{h}小时内联系并上门核查",
        "en": f"Fever follow-up: resident {person_id} had {t} °C at gate {gate}{en_at}; "
        f"contact and visit them within {h} hours",
    }


def breach(
    via: str,
    person_id: str | None,
    household_id: str,
    gate_id: str | None,
    status: str,
    label: dict[str, str],
    at: datetime,
    zone: str | None,
) -> dict[str, str]:
    zh_status, en_status = label.get("zh", status), label.get("en", status)
    t = reads(at, zone)
    if via == "door":
        return {
            "zh": f"隔离户开门：{zh_status}住户 {household_id} 的房门于 {t} 被打开（门磁报警），"
            "请立即联系并上门核查",
            "en": f"Quarantine breach: the door of household {household_id} ({en_status}) "
            f"opened at {t} (door sensor); contact them and check on site at once",
        }
    who = person_id or "?"
    gate = gate_id or "?"
    return {
        "zh": f"隔离人员外出被拦：{zh_status}人员 {who}（住户 {household_id}）于 {t} 在 {gate} 门"
        "试图离开，已被拒绝通行，请立即联系并核查",
        "en": f"Quarantine breach: {who} (household {household_id}), held in {en_status}, "
        f"tried to leave through gate {gate} at {t} and was stopped; contact them and check "
        "at once",
    }


def overdue(
    holder_id: str,
    household_id: str,
    permit_id: str,
    exited_at: datetime,
    return_by: datetime,
    zone: str | None,
) -> dict[str, str]:
    out, due = reads(exited_at, zone), reads(return_by, zone)
    h = hours("overdue_return")
    return {
        "zh": f"逾期未归：居民 {holder_id}（住户 {household_id}）持出行证 {permit_id} "
        f"于 {out} 外出，应于 {due} 前返回，至今未归，请在{h}小时内联系核实",
        "en": f"Overdue return: resident {holder_id} (household {household_id}) went "
        f"out at {out} on permit {permit_id}, was due back by {due} and is not back; "
        f"contact them within {h} hour{'' if h == '1' else 's'}",
    }


def door_visit(
    person_id: str,
    household_id: str,
    missed_days: int,
    last_checkin_day: date | None,
) -> dict[str, str]:
    zh_last = f"，最近一次打卡 {last_checkin_day.isoformat()}" if last_checkin_day else "，从未打卡"
    en_last = (
        f"; last check-in {last_checkin_day.isoformat()}"
        if last_checkin_day
        else "; never checked in"
    )
    day = "day" if missed_days == 1 else "days"
    return {
        "zh": f"上门探访：居民 {person_id}（住户 {household_id}）已 {missed_days} 天未打卡"
        f"{zh_last}，请今天上门",
        "en": f"Door visit: resident {person_id} (household {household_id}) has not checked "
        f"in for {missed_days} {day}{en_last}; call at the door today",
    }


def quarantine_support(
    household_id: str, person_id: str, since: datetime, zone: str | None
) -> dict[str, str]:
    t = reads(since, zone)
    h = hours("quarantine_support")
    return {
        "zh": f"居家隔离保障：住户 {household_id} 自 {t} 起居家隔离（首位：{person_id}），"
        f"请在{h}小时内核查门磁，安排生活物资配送和垃圾收运",
        "en": f"Home quarantine support: household {household_id} is in home quarantine since "
        f"{t} (first: {person_id}); within {h} hours check the door sensor and arrange "
        "supplies and rubbish collection",
    }


def transfer(
    person_id: str, household_id: str, since: datetime, zone: str | None
) -> dict[str, str]:
    t = reads(since, zone)
    h = hours("transfer")
    return {
        "zh": f"确诊转运：居民 {person_id}（住户 {household_id}）于 {t} 确诊，"
        f"请在{h}小时内安排转运至定点医院",
        "en": f"Transfer: resident {person_id} (household {household_id}) was confirmed at "
        f"{t}; arrange the transfer to a designated hospital within {h} hours",
    }
