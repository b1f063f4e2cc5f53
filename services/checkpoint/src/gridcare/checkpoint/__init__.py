"""gridcare checkpoint: gate verdicts, the entry/exit register, door sensors, gate health."""
