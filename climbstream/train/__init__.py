"""Hooks for the training loop: per-language loss tracking, sinks and re-weighting."""
