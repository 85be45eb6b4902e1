"""`climbstream report`: plots and a text summary of a loss log (see climbstream.formats.loss_log)."""
