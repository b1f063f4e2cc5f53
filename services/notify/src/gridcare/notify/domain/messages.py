"""What a recipient reads: a task in their language, a gate's state for its duty staff."""

from __future__ import annotations

from datetime import datetime

from gridcare.shared.localtime import reads

TITLES = {"zh": "新任务", "en": "New task"}
URGENT_TITLES = {"zh": "【紧急】新任务", "en": "URGENT: new task"}


def pick(texts: dict[str, str], language: str) -> tuple[str, str]:
    """The text in ``language``, else its base language, else Chinese, else English, else
    whatever there is (never nothing)."""
    for lang in (language, language.split("-")[0], "zh", "en"):
        if lang in texts:
            return lang, texts[lang]
    lang = next(iter(texts))
    return lang, texts[lang]


def task(summary: dict[str, str], language: str, urgent: bool) -> tuple[str, str, str]:
    """(language, title, body) of a new task for a grid worker."""
    lang, body = pick(summary, language)
    title = pick(URGENT_TITLES if urgent else TITLES, lang)[1]
    return lang, title, body


def gate_offline(
    gate_id: str, where: str, last_seen_at: datetime | None, silent_s: float, zone: str | None
) -> tuple[str, str]:
    """(title, body) for a gate's duty staff: Chinese and English in one message, because
    a gate (unlike a grid worker) has no language of its own."""
    seen = reads(last_seen_at, zone, seconds=True) if last_seen_at else None
    zh_seen = f"最后一次心跳 {seen}" if seen else "启动以来未收到心跳"
    en_seen = f"last heartbeat {seen}" if seen else "no heartbeat since start"
    silent = f"{silent_s:.0f}"
    title = f"【紧急】门岗离线 / URGENT: gate offline — {gate_id}"
    body = (
        f"门岗 {where} 已离线：{zh_seen}，已 {silent} 秒无响应。"
        "请立即到岗检查设备，恢复前请人工值守登记。\n"
        f"Gate {where} is offline: {en_seen}, silent for {silent} s. "
        "Check the device now and staff the gate by hand until it is back."
    )
    return title, body


def gate_online(gate_id: str, where: str, at: datetime, zone: str | None) -> tuple[str, str]:
    t = reads(at, zone, seconds=True)
    title = f"门岗恢复在线 / Gate back online — {gate_id}"
    body = (
        f"门岗 {where} 已于 {t} 恢复在线，可恢复自动测温核验。\n"
        f"Gate {where} came back online at {t}; automatic screening has resumed."
    )
    return title, body


#: What a gate sends, in the words of its duty staff (zh, en).
GATE_MESSAGE_KINDS = {"heartbeat": ("心跳消息", "heartbeats"), "scan": ("扫码请求", "scans")}


def gate_bad_input(
    gate_id: str,
    where: str,
    kind: str,
    reason: str,
    per_minute: int,
    at: datetime,
    zone: str | None,
) -> tuple[str, str]:
    """(title, body) for a gate's duty staff: the device sends more bad messages than are
    kept (only ``per_minute`` a minute are; the rest are counted)."""
    t = reads(at, zone, seconds=True)
    zh_kind, en_kind = GATE_MESSAGE_KINDS.get(kind, (kind, kind))
    title = f"门岗设备数据异常 / Gate sending bad data — {gate_id}"
    body = (
        f"门岗 {where} 自 {t} 起持续发送无法识别的{zh_kind}（{reason}）。"
        f"每分钟只保留 {per_minute} 条供排查，其余仅计数。请检查设备的配置、时钟或固件。\n"
        f"Gate {where} has been sending bad {en_kind} since {t} ({reason}). "
        f"Only {per_minute} a minute are kept for ops; the rest are counted. "
        "Check the device's configuration, clock or firmware."
    )
    return title, body


def gate_name(gate_id: str, compound_id: str, name: str) -> str:
    return f"{name} ({gate_id}, {compound_id})" if name else gate_id
