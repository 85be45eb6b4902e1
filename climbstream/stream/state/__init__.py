"""The saved state and the consumed position.

- saved_state.py  the saved state in one module: StreamState (format and checks), the keys an
                  iterator adds (ITERATOR, ...), and StateCodec (a Cursor to and from it)
- loader_state.py the dataset state inside a torchdata StatefulDataLoader's or torchtitan's state
- consumption.py  Consumption: the one owner of the consumed position and its generation
- control.py      SharedControl: what the main process publishes to workers (shared memory)
"""
