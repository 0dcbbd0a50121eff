"""Stand-in: PySlowFast imports matplotlib for plots only."""
