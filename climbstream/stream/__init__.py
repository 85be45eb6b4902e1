"""The stream: a torch IterableDataset that mixes a corpus at exact ratios and resumes.

Grouped by concern, so a change has one place to go:

- dataset.py      ClimbStream: composes the parts below; the user's entry point
- heldout.py      HeldoutStream: a language's held-out split, in order
- corpus_view.py  CorpusView: the manifests of one or more sources as one corpus, its orders
- plan/           what each position is, as a pure function (no I/O): Cursor, Plan, Planner,
                  Layout (which positions a rank and worker read), the partition count P
- state/          the saved state and the consumed position: saved_state.py (format, keys, codec),
                  the state inside a StatefulDataLoader's, Consumption, SharedControl
- iteration/      one pass in one process: StreamIterator, its StreamContext, ClimbDataLoader,
                  this process's readers, the sample dict, closing readers at worker exit
- consumers/      who iterates the stream (DataLoader, trainer wrappers), what is refused,
                  and the batches placed for accelerate's IterableDatasetShard
- config/         the dataset's arguments: StreamConfig (YAML), weights specs, shared bounds

Imports inside stream/ point one way: config <- plan <- state <- iteration, and the
entry points (dataset.py, heldout.py) import them all; consumers/ imports none of them.
Reading samples is the read side's (climbstream/read/, corpus_reader.py routes a corpus's
reads to each manifest's reader).
"""
