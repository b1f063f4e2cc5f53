"""Notify's entry points: each turns a message into a call of the service layer."""
