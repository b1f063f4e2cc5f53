"""Screening's repositories on its store, one module a part (the handlers' parts:
``handlers/<part>.py``); the unit of work (``unit_of_work.py``) makes them on its session."""

from .campaigns import Campaigns
from .cases import Cases
from .checkins import Checkins
from .common import IN_CHUNK, REFERENCE_TABLES
from .compounds import CompoundLevels
from .contacts import ContactProposals
from .followup import FollowUps
from .office import Office
from .quarantine import HouseholdQuarantines, Sites
from .questionnaires import Questionnaires
from .status import Statuses

__all__ = [
    "IN_CHUNK",
    "REFERENCE_TABLES",
    "Campaigns",
    "Cases",
    "Checkins",
    "CompoundLevels",
    "ContactProposals",
    "FollowUps",
    "HouseholdQuarantines",
    "Office",
    "Questionnaires",
    "Sites",
    "Statuses",
]
