"""The saved state and the consumed position.

- saved_state.py  StreamState: the saved state (what a checkpoint holds) and its checks
- state_codec.py  StateCodec: a Cursor to and from the saved state, checked against this corpus
- corpus_change.py a saved corpus history met by this corpus: growth continues it, a rewrite is refused
- loader_state.py the dataset state inside a torchdata StatefulDataLoader state
- consumption.py  Consumption: the one owner of the consumed position and its generation
- control.py      SharedControl: what the main process publishes to workers (shared memory)
"""
