"""The schedule: which language, and which sample of it, sits at global position p."""
