"""`climbstream report`: plots and a text summary of a loss log (read by climbstream.formats.loss_log).

- plots.py    the PNG plots: per-language loss, the mixture over time, tokens per language
- summary.py  the text summary: final loss, tokens and weight per language
- figure.py   figure helpers shared by the report and validate plots
"""
