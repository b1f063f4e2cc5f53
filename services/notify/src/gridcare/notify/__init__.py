"""gridcare notify: SMS and chat delivery, templates, rate limits, retries, escalation."""
