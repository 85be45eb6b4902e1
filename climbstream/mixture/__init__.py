"""Mixture solvers: the Climb law, its fit, the two-step solve and the baselines (pure numpy/scipy)."""
