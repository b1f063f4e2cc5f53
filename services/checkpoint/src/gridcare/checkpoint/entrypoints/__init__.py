"""The checkpoint's entry points: each turns a message into a call of the service layer,
except ``scans.py``, the gate scan path (the one deliberate exception: see its docstring)."""

STATE = "gate_state"  # FastStream context keys of what bootstrap provides
HEALTH = "gate_health"
DEVICES = "devices"
