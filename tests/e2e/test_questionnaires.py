"""A resident's questionnaire through screening and notify, against real processes: an
answer above 0 on PHQ-9 item 9 is replied to at once and becomes an urgent alert for the
community doctor (the sample's D-01, Chen Jing), saying whom to call and their phone and
never the answers or the score; answering again changes nothing.
"""

from __future__ import annotations

import asyncio

import pytest
from system import System, write_community

pytestmark = pytest.mark.e2e

ANSWERS = {
    "submission_id": "mp-20260312-0001",
    "person_id": "R-1001",
    "instrument": "phq9",
    "answers": [1, 1, 0, 1, 0, 0, 1, 0, 2],
    "submitted_at": "2026-03-12T08:59:00+08:00",
}


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_an_urgent_questionnaire_reaches_the_community_doctor_once(
    system: System, sink, tmp_path
):
    write_community(tmp_path / "community", sink)
    system.import_refdata(tmp_path / "community")
    await system.wait_projected()

    async def staff_known() -> bool:  # who the call-back goes to is screening's to find
        return await system.count("screening", "staff") == 3

    await system.wait_for(staff_known, what="staff in screening's store")

    reply = await system.request("resident.R-1001.questionnaire", ANSWERS)
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (
        6,
        "mild",
        "urgent_call_back",
    )
    assert "12356" in reply["message"]["zh"]

    async def to_doctor():
        return await system.rows("notify", "messages", "recipient_id = 'D-01'")

    [message] = await system.wait_for(to_doctor, what="the call-back to the community doctor")
    assert message.template == "task.mental_health_call_back" and message.priority == 0
    assert message.alert_id and f"[{message.alert_id}]" in message.sms
    text = message.title + message.body + message.sms
    assert "紧急心理回访" in message.title and "王芳" in text and "+8613900001001" in text
    for private in ("PHQ", "score", "得分", "mild", "轻度", "[1, 1, 0"):  # never the result
        assert private not in text
    [alert] = await system.rows("notify", "alerts", f"alert_id = '{message.alert_id}'")
    assert alert.kind == "mental_health_urgent" and alert.status == "open"

    again = await system.request("resident.R-1001.questionnaire", ANSWERS)
    assert again == reply
    await asyncio.sleep(2)  # a second request would have reached notify by now
    assert len(await to_doctor()) == 1
    assert await system.count("screening", "questionnaire_submissions") == 1
