"""The gate rules (the edge contract §1): every rule that fires, the most severe verdict,
and the permit an exit uses or a return closes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gridcare.contracts.refdata import ControlLevel

from .permits import EMERGENCY_KINDS, Permit
from .policy import Policy
from .scan import ScanRequest

VERDICT_RANK = {"allow": 0, "refer": 1, "deny": 2}

# What a device shows, per reason (zh, en). Allow has its own message.
MESSAGES: dict[str, tuple[str, str]] = {
    "fever": (
        "体温异常，请勿通行，工作人员将联系您",
        "High temperature: entry refused, staff will contact you",
    ),
    "no_temperature": ("未测得体温，请人工复测", "No temperature reading: please see staff"),
    "no_mask": ("请佩戴口罩", "Please wear a mask"),
    "code_red": ("健康码红码，禁止通行", "Red health code: passage refused"),
    "code_yellow": ("健康码黄码，禁止通行", "Yellow health code: passage refused"),
    "no_code": ("请出示健康码", "Please show your health code"),
    "quarantine": ("您处于隔离期，请勿外出", "You are in quarantine: please stay home"),
    "sealed": ("小区封控中，禁止外出", "Compound sealed: no exit"),
    "permit_required": ("外出需出行证", "An outing permit is required to leave"),
    "permit_expired": ("出行证已失效", "Your outing permit is no longer valid"),
    "unknown_person": ("身份未登记，请人工核验", "Not registered: please see staff"),
    "visitor_not_allowed": ("管控期间谢绝访客", "No visitors during controls"),
    "visitor_risk_area": (
        "来自风险地区，需提供有效核酸阴性证明",
        "From a risk area: a recent negative test is required",
    ),
    "overdue_return": ("您已超过出行证返回时间", "You are back after your permit's return time"),
}
ALLOW_MESSAGE = {"zh": "请通行", "en": "Please pass"}


@dataclass(frozen=True)
class Situation:
    """What the checkpoint knows of the person and place at the moment of the scan."""

    compound_id: str  # the gate's compound
    control_level: ControlLevel
    is_resident: bool  # lives in this compound
    is_known: bool = False  # a resident of the community (of this compound or another)
    held: str | None = None  # screening holds them: the status (quarantine, confirmed, ...)
    permits: tuple[Permit, ...] = ()  # the person's permits that are not closed


@dataclass(frozen=True)
class Verdict:
    verdict: Literal["allow", "deny", "refer"]
    reasons: tuple[str, ...]

    def message(self) -> dict[str, str]:
        if not self.reasons:
            return dict(ALLOW_MESSAGE)
        return {
            "zh": "；".join(MESSAGES[r][0] for r in self.reasons),
            "en": "; ".join(MESSAGES[r][1] for r in self.reasons),
        }


@dataclass(frozen=True)
class Decision:
    """A verdict and what it does to permits: the permit an exit uses, or a return closes."""

    verdict: Verdict
    uses_permit: Permit | None = None
    closes_permit: Permit | None = None


def decide(
    scan: ScanRequest, who: Situation, policy: Policy, received_at: datetime | None = None
) -> Verdict:
    """Every rule that fires, and the most severe verdict among them."""
    return evaluate(scan, who, policy, received_at).verdict


def evaluate(
    scan: ScanRequest, who: Situation, policy: Policy, received_at: datetime | None = None
) -> Decision:
    """The rules of the edge contract §1 for one scan, with the permit it uses or closes.

    The rules judge the scan as it happened, at its own time (``scanned_at``: a permit's
    window, a visitor's test); what counts on our clock is ``received_at`` (when the
    checkpoint got it; ``scanned_at`` if not given): a return is overdue if it came in
    after the permit's ``return_by``, which counts from when the exit came in."""
    fired: list[tuple[str, str]] = []  # (verdict, reason)
    rules = policy.rules(who.control_level)
    fever_c = rules.fever_c if rules.fever_c is not None else policy.fever_c

    if scan.temperature_c is None:
        fired.append(("refer", "no_temperature"))
    elif scan.temperature_c >= fever_c:
        fired.append(("deny", "fever"))
    if not scan.mask:
        fired.append(("deny", "no_mask"))
    if scan.health_code == "red":
        fired.append(("deny", "code_red"))
    elif scan.health_code == "yellow":
        fired.append(("deny", "code_yellow"))
    elif scan.health_code is None:
        fired.append(("refer", "no_code"))

    # A visitor: not a resident here, but identified (visitor details, or a resident of
    # another compound of the community). Nobody at all: refer to staff.
    is_visitor = not who.is_resident and (scan.visitor is not None or who.is_known)
    if not who.is_resident and not who.is_known and scan.visitor is None:
        fired.append(("refer", "unknown_person"))

    uses = closes = None
    if scan.direction == "out":
        if who.held:
            fired.append(("deny", "quarantine"))
        if rules.exit != "free" and (who.is_resident or not is_visitor):
            kinds = (
                EMERGENCY_KINDS if rules.exit == "emergency_only" else ("outing", *EMERGENCY_KINDS)
            )
            mine = [p for p in who.permits if p.kind in kinds]
            usable = [p for p in mine if p.usable_at(scan.scanned_at)]
            if usable:
                # the emergency kinds first, then the one that expires soonest
                uses = min(usable, key=lambda p: (p.kind not in EMERGENCY_KINDS, p.valid_until))
            elif rules.exit == "emergency_only":
                fired.append(("deny", "sealed"))
            elif mine:
                fired.append(("deny", "permit_expired"))
            else:
                fired.append(("deny", "permit_required"))
        elif rules.exit != "free" and is_visitor and rules.exit == "emergency_only":
            fired.append(("deny", "sealed"))
    else:
        out = [p for p in who.permits if p.state == "out"]
        if out:
            closes = min(out, key=lambda p: p.return_by or p.valid_until)
            back_at = received_at or scan.scanned_at
            if closes.return_by is not None and back_at > closes.return_by:
                fired.append(("allow", "overdue_return"))  # informational

    if is_visitor:
        if rules.visitors == "deny":
            fired.append(("deny", "visitor_not_allowed"))
        elif scan.direction == "in" and scan.visitor is not None:
            v = scan.visitor
            if v.from_region in policy.risk_regions:
                valid = v.negative_test_at is not None and (
                    timedelta(0)
                    <= scan.scanned_at - v.negative_test_at
                    <= timedelta(hours=policy.visitor_test_validity_h)
                )  # a test "taken" after the scan is not evidence of anything
                if not valid:
                    fired.append(("deny", "visitor_risk_area"))

    if not fired:
        return Decision(Verdict("allow", ()), uses_permit=uses, closes_permit=closes)
    worst = max(fired, key=lambda f: VERDICT_RANK[f[0]])[0]
    verdict = Verdict(worst, tuple(dict.fromkeys(r for _, r in fired)))  # type: ignore[arg-type]
    if worst != "allow":  # a person who does not pass neither uses nor closes a permit
        uses = closes = None
    return Decision(verdict, uses_permit=uses, closes_permit=closes)
