"""The dataset's arguments, and the bounds they are checked against.

- stream_config.py StreamConfig: the YAML form of the dataset's arguments
- weight_spec.py   weights given as ratios, a file or a method, resolved to ratios
- checks.py        bounds shared by the constructor, the config and the state
"""
