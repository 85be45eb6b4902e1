"""`climbstream report`: plots and a text summary of a loss log (see climbstream.train.loss_log)."""
