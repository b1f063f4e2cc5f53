"""Notify's templates: every template in every language, the fallback, the sandbox, local
times, alert ids, SMS segments and cutting."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridcare.notify.domain.templates import (
    FOLDER,
    BadParams,
    BrokenTemplate,
    Rendered,
    Templates,
    UnknownTemplate,
    cut_sms,
    sms_segments,
)

AT = "2026-03-11T23:31:05Z"  # 07:31:05 in Shanghai
ALERT = "AL-7f3a9c"
ACK = "http://127.0.0.1:8090/ack/AL-7f3a9c?sig=0123456789abcdef"
ESCALATION = {"previous": "李梅", "waited_min": 5, "level": 2}

#: What the producers send, per template (Chinese names: an English text with one is UCS-2
#: too, so its SMS has the smaller room).
SAMPLES: dict[str, dict] = {
    "task.close_contacts": {
        "case_person_id": "R-1001",
        "count": 3,
        "household": 2,
        "gate": 1,
        "grid_id": "G-01",
        "command": "gridcare contacts proposed --case R-1001 --grid G-01",
    },
    "task.fever_follow_up": {
        "person_id": "R-1001",
        "gate_id": "g1",
        "temperature_c": 38.2,
        "observed_at": AT,
        "hours": 2,
    },
    "task.quarantine_breach": {
        "via": "gate",
        "person_id": "R-1002",
        "household_id": "H-0102",
        "gate_id": "g1",
        "status": "home_quarantine",
        "status_label": {"zh": "居家隔离", "en": "home quarantine"},
        "at": AT,
    },
    "task.overdue_return": {
        "holder_id": "R-1003",
        "household_id": "H-0103",
        "permit_id": "P-20260312-0007",
        "exited_at": "2026-03-12T01:00:00Z",
        "return_by": "2026-03-12T05:00:00Z",
        "hours": 1,
    },
    "gate.offline": {
        "gate_id": "g1",
        "gate_name": "东湖花园东门",
        "compound_id": "C-01",
        "last_seen_at": AT,
        "silent_s": 95.4,
    },
    "gate.online": {
        "gate_id": "g1",
        "gate_name": "东湖花园东门",
        "compound_id": "C-01",
        "at": "2026-03-11T23:41:05Z",
    },
    "gate.bad_input": {
        "gate_id": "g1",
        "gate_name": "东湖花园东门",
        "compound_id": "C-01",
        "kind": "heartbeat",
        "count": 3000,
        "since": AT,
    },
    "alert.taken": {"alert_id": ALERT, "taken_by": "李梅", "at": "2026-03-11T23:36:00Z"},
    "alert.unacknowledged": {
        "alert_id": ALERT,
        "kind": "fever",
        "tried": ["李梅", "王建国", "赵强"],
    },
    "digest": {
        "items": [
            {"title": "逾期未归 — 居民 R-1003", "body": "居民 R-1003 至今未归。"},
            {"title": "漏打卡 — 居民 张伟", "body": "张伟已连续 2 天未打卡。"},
            {"title": "门岗恢复在线 — 东门", "body": "东门已恢复在线。"},
        ],
        "count": 3,
        "period_minutes": 60,
    },
    "notice.text": {"text": "明天上午 9:00 至 11:00 停水，请提前储水。", "from_name": "居委会"},
    "notice.test_campaign": {
        "place_name": "东湖花园",
        "at": "2026-03-12T06:00:00Z",
        "location": "东门广场",
    },
    "task.test_campaign_door_call": {
        "campaign_id": "C-01-20260312-0800",
        "place_name": "东湖花园",
        "location": "东门广场",
        "ends_at": "2026-03-12T10:00:00Z",
        "count": 3,
        "households": [
            {"household_id": "H-0101", "people": ["R-1001", "R-1002"]},
            {"household_id": "H-0204", "people": ["R-1009"]},
        ],
    },
    "task.quarantine_support": {
        "household_id": "H-0101",
        "person_id": "R-1001",
        "since": AT,
        "until": "2026-03-25T23:31:05Z",
        "hours": 6,
    },
    "task.transfer": {"person_id": "R-1001", "household_id": "H-0101", "at": AT, "hours": 2},
    "checkin.reminder": {"name": "张伟", "day": "2026-03-12", "by_time": "20:00"},
    "checkin.missed": {
        "person_id": "R-1004",
        "name": "张伟",
        "household_id": "H-0104",
        "days": 2,
    },
    "task.follow_up_missed": {
        "person_id": "R-1003",
        "name": "赵敏",
        "household_id": "H-0102",
        "days": ["2026-03-13"],
        "started_on": "2026-03-12",
        "ends_on": "2026-03-26",
        "last_checkin_day": None,
    },
    "task.mental_health_call_back": {
        "person_id": "R-1001",
        "name": "王芳",
        "phone": "13800000001",
        "urgent": True,
        "at": "2026-03-12T01:00:00Z",
    },
}

TEMPLATES = Templates()
EVERY = [(t, lang) for t in TEMPLATES.ids() for lang in TEMPLATES.languages(t)]


def folder(tmp_path: Path, files: dict[str, str], common: bool = True) -> Templates:
    """A templates folder of its own (with the package's ``_common`` unless told not)."""
    if common:
        shutil.copytree(FOLDER / "_common", tmp_path / "_common")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Templates(tmp_path)


def plain(title: str, body: str, sms: str | None = None) -> str:
    text = f"{{% block title %}}{title}{{% endblock %}}\n{{% block body %}}{body}{{% endblock %}}\n"
    if sms is not None:
        text += f"{{% block sms %}}{sms}{{% endblock %}}\n"
    return text


# -- every template ------------------------------------------------------------------------


def test_the_samples_are_exactly_what_each_template_needs() -> None:
    assert set(TEMPLATES.ids()) == set(SAMPLES)
    for template_id, params in SAMPLES.items():
        assert TEMPLATES.required_params(template_id) == set(params), template_id


def test_every_template_has_chinese_and_english_and_compiles() -> None:
    TEMPLATES.check()
    for template_id in TEMPLATES.ids():
        assert {"zh", "en"} <= set(TEMPLATES.languages(template_id)), template_id


@pytest.mark.parametrize(("template_id", "language"), EVERY)
def test_every_template_renders_in_every_language(template_id: str, language: str) -> None:
    r = TEMPLATES.render(template_id, language, SAMPLES[template_id], zone="Asia/Shanghai")
    assert isinstance(r, Rendered)
    assert (r.template, r.language) == (template_id, language)
    assert r.title.strip() and r.body.strip() and r.sms.strip()
    assert "\n" not in r.title
    for text in (r.title, r.body, r.sms):
        assert "None" not in text and "{{" not in text and "{%" not in text
        assert "Undefined" not in text
    assert not r.sms_cut
    assert r.sms_segments == sms_segments(r.sms) <= 3


@pytest.mark.parametrize(("template_id", "language"), EVERY)
def test_every_template_as_an_escalated_alert_fits_an_sms_without_cutting(
    template_id: str, language: str
) -> None:
    r = TEMPLATES.render(
        template_id,
        language,
        SAMPLES[template_id],
        zone="Asia/Shanghai",
        alert_id=ALERT,
        ack_url=ACK,
        escalation=ESCALATION,
    )
    tag = f" [{ALERT}]"
    assert r.title.endswith(tag) and r.title.count(f"[{ALERT}]") == 1
    assert not r.sms_cut, r.sms
    assert sms_segments(r.sms) <= 3
    assert r.sms.count(f"[{ALERT}]") == 1
    # the body: the escalation line first, then the text ending in the id, then the link
    first, *_, text, link = r.body.split("\n")
    assert "李梅" in first and "5" in first
    assert text.endswith(tag) and r.body.count(f"[{ALERT}]") == 1
    assert link.endswith(ACK)
    # the SMS: the id at the end of its text; the link and the escalation when they fit
    assert r.sms.endswith(tag) or r.sms.endswith(ACK)


# -- the texts -----------------------------------------------------------------------------


def test_the_fever_text_keeps_the_meaning_of_dispatchs_summary() -> None:
    zh = TEMPLATES.render("task.fever_follow_up", "zh", SAMPLES["task.fever_follow_up"])
    assert zh.body == (
        "发热随访：居民 R-1001 于 2026-03-12 07:31 在 g1 门测得体温 38.2°C，"
        "请在 2 小时内联系并上门核查。"
    )
    en = TEMPLATES.render("task.fever_follow_up", "en", SAMPLES["task.fever_follow_up"])
    assert en.body == (
        "Fever follow-up: resident R-1001 had 38.2 °C at gate g1 at 2026-03-12 07:31; "
        "contact and visit them within 2 hours."
    )
    assert "°" not in en.sms  # not in the GSM alphabet: the English SMS stays GSM-7


def test_null_and_odd_params_read_sensibly() -> None:
    fever = {**SAMPLES["task.fever_follow_up"], "observed_at": None, "hours": 0.25}
    fever["temperature_c"] = 38.0
    en = TEMPLATES.render("task.fever_follow_up", "en", fever)
    assert "38.0 °C at gate g1;" in en.body and "within 0.25 hours" in en.body
    one = TEMPLATES.render("task.overdue_return", "en", SAMPLES["task.overdue_return"])
    assert "within 1 hour." in one.body

    door = {
        **SAMPLES["task.quarantine_breach"],
        "via": "door",
        "person_id": None,
        "gate_id": None,
    }
    zh = TEMPLATES.render("task.quarantine_breach", "zh", door)
    assert "居家隔离住户 H-0102 的房门于 2026-03-12 07:31 被打开" in zh.body
    en = TEMPLATES.render("task.quarantine_breach", "en", door)
    assert "household H-0102 (home quarantine) opened at 2026-03-12 07:31" in en.body
    # no label in the language: the status as it is
    only_zh = {**door, "status_label": {"zh": "居家隔离"}}
    en = TEMPLATES.render("task.quarantine_breach", "en", only_zh)
    assert "(home_quarantine)" in en.body

    silent = {**SAMPLES["gate.offline"], "last_seen_at": None, "silent_s": 600}
    en = TEMPLATES.render("gate.offline", "en", silent)
    assert "no heartbeat since start, silent for 10 min" in en.body
    zh = TEMPLATES.render("gate.offline", "zh", {**silent, "gate_name": ""})
    assert zh.body.startswith("门岗 g1 已离线：启动以来未收到心跳，已 10 分钟无响应")

    bad = {**SAMPLES["gate.bad_input"], "since": None, "kind": "door"}
    assert "门磁事件" in TEMPLATES.render("gate.bad_input", "zh", bad).body
    assert "bad door events (3000 so far)" in TEMPLATES.render("gate.bad_input", "en", bad).body

    nobody = {**SAMPLES["alert.unacknowledged"], "tried": []}
    assert "Nobody acknowledged the fever alert AL-7f3a9c." in (
        TEMPLATES.render("alert.unacknowledged", "en", nobody).body
    )

    digest = {**SAMPLES["digest"], "count": 5, "period_minutes": 30}
    r = TEMPLATES.render("digest", "en", digest)
    assert r.title == "5 notices in the last 30 minutes"
    assert "... and 2 more not listed." in r.body
    assert TEMPLATES.render("digest", "zh", digest).title == "汇总通知：5 条（过去 30 分钟）"

    unsigned = {**SAMPLES["notice.text"], "from_name": None}
    r = TEMPLATES.render("notice.text", "zh", unsigned)
    assert (r.title, r.body) == ("社区通知", SAMPLES["notice.text"]["text"])


def test_the_office_text_is_shown_as_it_is() -> None:
    text = "Bring <ID> & mask {please}\n\nLine two: {{ not a template }}"
    r = TEMPLATES.render("notice.text", "en", {"text": text, "from_name": "Wang"})
    assert r.body == f"{text}\n— Wang"  # no escaping (plain text), nothing evaluated


def test_an_empty_title_or_body_is_an_error_not_a_message() -> None:
    for text in ("", "   \n "):
        with pytest.raises(BadParams) as e:
            TEMPLATES.render("notice.text", "zh", {"text": text, "from_name": "居委会"})
        assert "text" in e.value.missing
    with pytest.raises(BadParams):
        TEMPLATES.render("notice.text", "en", {"text": "", "from_name": None})


# -- languages -----------------------------------------------------------------------------


def test_language_fallback(tmp_path: Path) -> None:
    t = folder(
        tmp_path,
        {
            "x.only_en/en.txt": plain("Hello", "English"),
            "x.both/zh.txt": plain("你好", "中文"),
            "x.both/en.txt": plain("Hello", "English"),
            "x.tw/zh-TW.txt": plain("你好", "繁體"),
            "x.tw/zh.txt": plain("你好", "简体"),
            "x.de/de.txt": plain("Hallo", "Deutsch"),
            "x.de/fr.txt": plain("Bonjour", "Français"),
        },
    )
    assert t.ids() == ["x.both", "x.de", "x.only_en", "x.tw"]
    assert t.languages("x.tw") == ["zh", "zh-TW"]
    assert t.render("x.only_en", "fr", {}).language == "en"
    assert t.render("x.only_en", "zh", {}).body == "English"
    assert t.render("x.both", "fr", {}).language == "zh"  # Chinese before English
    assert t.render("x.both", "en-GB", {}).language == "en"  # the base language
    assert t.render("x.both", "zh-TW", {}).language == "zh"
    assert t.render("x.tw", "zh-TW", {}).body == "繁體"
    assert t.render("x.tw", "zh_tw", {}).language == "zh-TW"  # spelt otherwise
    assert t.render("x.tw", "zh-HK", {}).language == "zh"
    assert t.render("x.de", "it", {}).language == "de"  # anything it has, never nothing
    assert t.render("x.de", "", {}).language == "de"


def test_the_renderers_own_lines_follow_the_language(tmp_path: Path) -> None:
    t = folder(
        tmp_path,
        {
            "x.t/zh.txt": plain("标题", "正文 {{ at|local }}"),
            "x.t/en.txt": plain("Title", "Text {{ at|local }}"),
            "x.t/fr.txt": plain("Titre", "Texte {{ at|local }}"),
        },
    )
    esc = {"previous": "Li Mei", "waited_min": 15}
    en = t.render("x.t", "en", {"at": None}, escalation=esc, ack_url=ACK)
    assert en.body.split("\n") == [
        "Escalated: Li Mei did not acknowledge within 15 minutes.",
        "Text (time unknown)",
        f"Acknowledge: {ACK}",
    ]
    zh = t.render("x.t", "zh", {"at": ""}, escalation={**esc, "level": 3})
    assert zh.body.split("\n") == [
        "【升级】Li Mei在 15 分钟内未确认，现转给你（第 3 级）。",
        "正文 （时间不详）",
    ]
    # a language without its own _common file: Chinese lines (the fallback)
    fr = t.render("x.t", "fr", {"at": None}, escalation={"waited_min": 1})
    assert fr.body.split("\n") == [
        "【升级】上一位接收人在 1 分钟内未确认，现转给你。",
        "Texte （时间不详）",
    ]
    with pytest.raises(BadParams) as e:
        t.render("x.t", "en", {"at": None}, escalation={"previous": "Li Mei"})
    assert e.value.missing == ["escalation.waited_min"]


# -- bad input -----------------------------------------------------------------------------


def test_a_missing_parameter_is_named() -> None:
    params = dict(SAMPLES["task.fever_follow_up"])
    del params["hours"], params["gate_id"]
    with pytest.raises(BadParams) as e:
        TEMPLATES.render("task.fever_follow_up", "en", params)
    assert e.value.missing == ["gate_id", "hours"]
    assert "gate_id" in str(e.value) and isinstance(e.value, ValueError)
    # even one only another language's file uses, and one used only in a branch not taken
    params = dict(SAMPLES["task.quarantine_breach"])
    del params["person_id"]
    with pytest.raises(BadParams) as e:
        TEMPLATES.render("task.quarantine_breach", "zh", {**params, "via": "door"})
    assert e.value.missing == ["person_id"]


def test_a_missing_key_inside_a_parameter_is_named() -> None:
    digest = {**SAMPLES["digest"], "items": [{"body": "no title"}]}
    with pytest.raises(BadParams) as e:
        TEMPLATES.render("digest", "en", digest)
    assert e.value.missing == ["items[0].title"]


def test_an_unusable_parameter_is_named() -> None:
    for key, value in (("observed_at", "yesterday"), ("temperature_c", "hot"), ("hours", True)):
        params = {**SAMPLES["task.fever_follow_up"], key: value}
        with pytest.raises(BadParams) as e:
            TEMPLATES.render("task.fever_follow_up", "zh", params)
        assert e.value.missing == [key]
    with pytest.raises(BadParams) as e:
        TEMPLATES.render("gate.offline", "en", {**SAMPLES["gate.offline"], "silent_s": "long"})
    with pytest.raises(BadParams) as e:
        TEMPLATES.render("task.fever_follow_up", "en", SAMPLES["task.fever_follow_up"], zone="Mars")
    assert e.value.missing == ["zone"]


def test_a_null_printed_where_a_text_is_needed_is_refused(tmp_path: Path) -> None:
    t = folder(tmp_path, {"x.t/en.txt": plain("Hi {{ who }}", "Text")})
    with pytest.raises(BadParams) as e:
        t.render("x.t", "en", {"who": None})
    assert e.value.missing == ["who"]
    assert t.render("x.t", "en", {"who": 0}).title == "Hi 0"


def test_an_unknown_template() -> None:
    for name in ("task.nope", "_common", "../etc", ""):
        with pytest.raises(UnknownTemplate):
            TEMPLATES.render(name, "zh", {})
        with pytest.raises(LookupError):
            TEMPLATES.languages(name)
        with pytest.raises(UnknownTemplate):
            TEMPLATES.required_params(name)


def test_a_broken_template_is_found(tmp_path: Path) -> None:
    t = folder(
        tmp_path,
        {
            "x.syntax/en.txt": plain("{{ oops", "Body"),
            "x.noblock/en.txt": "{% block title %}T{% endblock %}",
        },
    )
    with pytest.raises(BrokenTemplate):
        t.render("x.syntax", "en", {})
    with pytest.raises(BrokenTemplate):
        t.render("x.noblock", "en", {})
    with pytest.raises(BrokenTemplate):
        t.check()
    # no _common: fine until a line of it is needed
    bare = folder(tmp_path / "bare", {"x.t/en.txt": plain("T", "B")}, common=False)
    assert bare.render("x.t", "en", {}, alert_id="A-1").body == "B [A-1]"
    with pytest.raises(BrokenTemplate):
        bare.render("x.t", "en", {}, ack_url=ACK)


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "x.__class__.__init__.__globals__",
        "x|attr('__class__')",
        "'{0.__class__}'.format(x)",
        "'{0.__class__}'.format_map({'0': x})",
        "cycler.__init__.__globals__",
        "lipsum.__globals__['os']",
        "items.append(1)",
        "items.pop()",
        "status_label.update({'zh': 'x'})",
    ],
)
def test_the_sandbox_refuses_internals_and_changes(tmp_path: Path, expression: str) -> None:
    t = folder(tmp_path, {"x.evil/en.txt": plain("T", f"{{{{ {expression} }}}}")})
    params = {"x": "s", "items": [1, 2], "status_label": {"zh": "居家隔离"}}
    with pytest.raises((BrokenTemplate, BadParams)):
        t.render("x.evil", "en", params)
    assert params == {"x": "s", "items": [1, 2], "status_label": {"zh": "居家隔离"}}


def test_unsafe_attribute_access_is_a_broken_template_not_a_param(tmp_path: Path) -> None:
    t = folder(tmp_path, {"x.evil/en.txt": plain("T", "{{ ''.__class__ }}")})
    with pytest.raises(BrokenTemplate, match="unsafe"):
        t.render("x.evil", "en", {})


# -- local times ---------------------------------------------------------------------------


def test_times_are_read_on_the_communitys_clock(tmp_path: Path) -> None:
    t = folder(
        tmp_path,
        {"x.t/en.txt": plain("{{ at|hm }}", "{{ at|local }} | {{ at|local_seconds }}")},
    )
    shanghai = t.render("x.t", "en", {"at": AT}, zone="Asia/Shanghai")
    assert (shanghai.title, shanghai.body) == ("07:31", "2026-03-12 07:31 | 2026-03-12 07:31:05")
    assert t.render("x.t", "en", {"at": AT}).body.startswith("2026-03-12 07:31")  # the default
    london = t.render("x.t", "en", {"at": AT}, zone="Europe/London")
    assert london.body == "2026-03-11 23:31 | 2026-03-11 23:31:05"
    for same in (
        "2026-03-12T07:31:05+08:00",
        "2026-03-11T23:31:05.250000+00:00",
        "2026-03-11 23:31:05Z",
        "2026-03-11T23:31:05",  # no offset: UTC, as the stores keep it
        datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC),
    ):
        assert t.render("x.t", "en", {"at": same}, zone="Asia/Shanghai").title == "07:31"
    with pytest.raises(BadParams) as e:
        t.render("x.t", "en", {"at": "2026-03-12"})  # a day is not an instant
    assert e.value.missing == ["at"]


def test_a_task_shows_shanghai_time() -> None:
    r = TEMPLATES.render(
        "task.overdue_return", "zh", SAMPLES["task.overdue_return"], zone="Asia/Shanghai"
    )
    assert "于 2026-03-12 09:00 外出，应于 2026-03-12 13:00 前返回" in r.body


# -- alerts --------------------------------------------------------------------------------


def test_the_alert_id_is_appended_once(tmp_path: Path) -> None:
    t = folder(
        tmp_path,
        {
            "x.plain/en.txt": plain("Fever", "Visit R-1001."),
            "x.ends/en.txt": plain("Fever [A-1]", "Visit R-1001. [A-1]", "Visit [A-1]"),
            "x.inside/en.txt": plain("[A-1] Fever", "Alert [A-1]: visit R-1001.", "[A-1] go"),
        },
    )
    for template_id in ("x.plain", "x.ends", "x.inside"):
        r = t.render(template_id, "en", {}, alert_id="A-1")
        for text in (r.title, r.body, r.sms):
            assert text.endswith(" [A-1]") and text.count("[A-1]") == 1, (template_id, text)
    r = t.render("x.plain", "en", {}, alert_id="A-1")
    assert (r.title, r.body, r.sms) == ("Fever [A-1]", "Visit R-1001. [A-1]", "Visit R-1001. [A-1]")
    r = t.render("x.plain", "en", {})
    assert "[" not in r.title + r.body + r.sms


def test_the_ack_link_goes_in_the_body_and_in_the_sms_only_when_it_fits(tmp_path: Path) -> None:
    t = folder(
        tmp_path,
        {
            "x.short/en.txt": plain("T", "Short text."),
            "x.long/en.txt": plain("T", "word " * 85),  # 425 characters: the link no longer fits
        },
    )
    r = t.render("x.short", "en", {}, alert_id="A-1", ack_url=ACK)
    assert r.body == f"Short text. [A-1]\nAcknowledge: {ACK}"
    assert r.sms == r.body
    r = t.render("x.long", "en", {}, alert_id="A-1", ack_url=ACK)
    assert r.body.endswith(f"[A-1]\nAcknowledge: {ACK}")
    assert ACK not in r.sms and r.sms.endswith(" [A-1]") and not r.sms_cut


# -- SMS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r", 1),
        ("{" * 80, 1),  # extension table: two septets each
        ("{" * 81, 2),
        ("€" * 80, 1),
        ("a" * 159 + "€", 2),
        ("a" * 158 + "[", 1),
        ("^}\\~]|" + "a" * 148, 1),  # 12 + 148 = 160
        ("a" * 152 + "{" + "a" * 152, 3),  # an escape pair is never split across parts
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("中" * 201, 3),
        ("中" * 202, 4),
        ("a" * 69 + "中", 1),  # one Chinese character makes the whole text UCS-2
        ("a" * 70 + "中", 2),
        ("a" * 70 + "°", 2),  # not in the GSM alphabet either
        ("a" * 70 + "`", 2),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units
        ("😀" * 36, 2),
        ("中" * 66 + "😀" + "中" * 66, 3),  # a surrogate pair is never split across parts
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_a_long_english_sms_is_cut_at_a_word_with_gsm_dots(tmp_path: Path) -> None:
    words = " ".join(f"word{i:03d}" for i in range(100))  # 799 characters
    t = folder(tmp_path, {"x.t/en.txt": plain("T", words)})
    r = t.render("x.t", "en", {}, alert_id="A-1")
    assert r.sms_cut and r.body == f"{words} [A-1]"
    assert r.sms_segments == sms_segments(r.sms) == 3
    assert r.sms.endswith("... [A-1]")
    head = r.sms.removesuffix("... [A-1]")
    assert words.startswith(head) and words[len(head)] == " "  # at a word boundary
    assert len(r.sms) > 400  # GSM-7 kept: about 459 characters, not 201
    one = Templates(tmp_path, max_sms_segments=1).render("x.t", "en", {})
    assert one.sms_cut and sms_segments(one.sms) == 1 and one.sms.endswith("...")


def test_a_long_chinese_sms_is_cut_with_an_ellipsis(tmp_path: Path) -> None:
    text = "请全体居民明天上午到东门广场参加核酸检测。" * 20
    t = folder(tmp_path, {"x.t/zh.txt": plain("通知", text)})
    r = t.render("x.t", "zh", {}, alert_id="A-1", ack_url=ACK, escalation={"waited_min": 5})
    assert r.sms_cut and r.sms.endswith("… [A-1]") and sms_segments(r.sms) == 3
    assert ACK not in r.sms and "升级" not in r.sms  # nothing added to a cut text
    assert ACK in r.body and r.body.startswith("【升级】")


def test_cut_sms_keeps_what_fits_and_the_suffix() -> None:
    assert cut_sms("short", 1, " [A-1]") == "short [A-1]"
    cut = cut_sms("x" * 500, 1, " [A-1]")
    assert cut.endswith("... [A-1]") and sms_segments(cut) == 1
    assert len(cut) == 160 - 2  # the id's brackets take two septets each
    assert sms_segments(cut_sms("中文" * 200, 2)) == 2
