"""A broadcast survives notify being killed in the middle of it (issue 13): SIGKILL while
600 residents are being sent an SMS through a gateway capped at 150 a second, then a
restart: everyone gets it, nobody twice.

"Twice" is as the recipient sees it: a message the gateway had accepted in the instant
before the kill, whose outcome notify could not commit, is sent again after the restart
with the same idempotency key (the one window left, docs/notify.md), which a gateway that
honours the key drops. So: every resident's phone got the notice under exactly one key.
"""

from __future__ import annotations

import csv

import pytest
from system import write_community

pytestmark = pytest.mark.e2e
PEOPLE = 600
RATE = 150  # the gateway's cap: the broadcast takes about 4 s


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_sigkill_mid_broadcast_sends_nobody_anything_twice_and_misses_nobody(
    system, sink, tmp_path
):
    folder = tmp_path / "community"
    write_community(folder, sink, extra_residents=PEOPLE)
    with (folder / "channels.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["channel_id", "community_id", "kind", "url", "rate_per_s"])
        w.writerow(["SMS-1", "CM-1", "sms", sink.url("/sms"), RATE])
    with (folder / "residents.csv").open(encoding="utf-8") as f:
        phones = {
            r["phone"].replace(" ", "").replace("-", "")
            for r in csv.DictReader(f)
            if r["phone"] and r["household_id"] in {"H-0101", "H-0102", "H-0201"}  # in C-01
        }
    system.import_refdata(folder)
    await system.wait_projected()

    async def notify_knows_everyone() -> bool:
        return await system.count("notify", "residents") == system.residents

    await system.wait_for(notify_knows_everyone, what="residents in notify's store")

    text = "Everyone down for testing at 14:00 / 全员核酸 14:00"
    started = await system.request(
        "api.notify.broadcast.start",
        {
            "place": "compound",
            "place_id": "C-01",
            "template": "notice.text",
            "params": {"text": text, "from_name": "Office"},
            "by": "test",
        },
    )
    bid = started["result"]["broadcast_id"]

    def sms() -> list[dict]:
        return [p for p in sink.posts("/sms") if text in p["body"]["text"]]

    async def a_third_sent() -> bool:
        return len(sms()) >= len(phones) // 3

    await system.wait_for(a_third_sent, what="a third of the broadcast sent")
    system.kill("notify")
    at_kill = len(sms())
    assert at_kill < len(phones), "the broadcast finished before the kill"
    system.restart("notify")

    async def done():
        reply = await system.request("api.notify.broadcast.status", {"broadcast_id": bid})
        return reply["result"] if reply["result"]["done"] else None

    status = await system.wait_for(done, timeout=90, what="the broadcast finished")
    assert status["counts"] == {"sent": len(phones)}, status
    posts = sms()
    keys_by_phone: dict[str, set[str]] = {}
    for p in posts:
        keys_by_phone.setdefault(p["body"]["to"], set()).add(p["body"]["key"])
    assert set(keys_by_phone) == phones  # nobody missed
    assert all(len(keys) == 1 for keys in keys_by_phone.values())  # nobody twice
    repeats = len(posts) - len(phones)  # resent after the kill with the same key
    assert repeats <= 200, repeats  # at most what was in flight at the kill
    print(f"{len(phones)} residents, {at_kill} sent before the kill, {repeats} repeated keys")
    for name in ("notify",):
        assert await system.count(name, "dead_letters") == 0, system.logs()
