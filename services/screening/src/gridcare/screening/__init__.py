"""gridcare screening: the health registry (check-ins, four categories, quarantine, cases)."""
