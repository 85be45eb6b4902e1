"""Tests of the training hooks: loss tracker, sinks, loss log, report."""
