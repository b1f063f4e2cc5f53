"""The checkpoint's adapters: its tables, SQL repositories and their in-memory twins."""
