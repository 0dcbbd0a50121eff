"""Stand-in: PySlowFast imports pyplot for plots only; model building never calls it."""
