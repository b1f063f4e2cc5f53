"""What the parts share: the reference data screening keeps (projected from the REFDATA
stream), and how many ids go in one IN (...) list."""

from __future__ import annotations

from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)

from .. import tables as T

REFERENCE_TABLES = {
    Resident.TYPE: T.residents,
    Household.TYPE: T.households,
    Building.TYPE: T.buildings,
    Compound.TYPE: T.compounds,
    Community.TYPE: T.communities,
    CommunityPolicy.TYPE: T.policies,  # screening's part (check-ins, follow-up)
    Staff.TYPE: T.staff,  # who may decide a status, in which role
    Grid.TYPE: T.grids,  # a grid's worker decides as a grid_worker
}

#: Ids per IN (...) list: well under SQLite's and PostgreSQL's limits on parameters.
IN_CHUNK = 1000
