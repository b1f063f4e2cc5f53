"""gridcare dispatch: help requests, field tasks, volunteers, shifts, group buys, visits."""
