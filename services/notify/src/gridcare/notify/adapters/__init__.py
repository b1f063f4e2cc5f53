"""Notify's adapters: its tables, the SQL repositories and their in-memory twins, chat."""
