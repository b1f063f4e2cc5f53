"""The checkpoint's rules, as plain Python: no I/O, no SQLAlchemy, no broker.

- ``scan``     the scan request and its validation (every bad field named at once)
- ``rules``    the gate rules: the verdict, its reasons, the permit it uses or closes
- ``policy``   a community's thresholds, and every default (one copy)
- ``permits``  the permit lifecycle, the household quota in local days, overdue
- ``holds``    screening's holds (newest wins) and what a door opening means
- ``health``   gate heartbeats and when a gate is offline
- ``state``    what the gate path knows, in memory (reference data, levels, holds,
               permits, who is out)
"""

from .permits import EMERGENCY_KINDS, Permit
from .policy import DEFAULT_LEVELS, Policy
from .rules import ALLOW_MESSAGE, MESSAGES, Decision, Situation, Verdict, decide, evaluate
from .scan import InvalidScan, ScanRequest, Visitor, parse_scan

__all__ = [
    "ALLOW_MESSAGE",
    "DEFAULT_LEVELS",
    "EMERGENCY_KINDS",
    "MESSAGES",
    "Decision",
    "InvalidScan",
    "Permit",
    "Policy",
    "ScanRequest",
    "Situation",
    "Verdict",
    "Visitor",
    "decide",
    "evaluate",
    "parse_scan",
]
