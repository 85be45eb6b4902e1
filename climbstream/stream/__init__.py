"""The stream: a torch IterableDataset that mixes a corpus at exact ratios and resumes.

- dataset.py      ClimbStream: composes the parts below; the user's entry point
- iterator.py     StreamIterator: one pass in one process (main or a DataLoader worker)
- loader.py       ClimbDataLoader: a DataLoader that follows the batches it yields
- loader_state.py the dataset state inside a torchdata StatefulDataLoader state
- control.py      SharedControl: what the main process publishes to workers (shared memory)
- cursor.py       Cursor: (seed, stages, position, generation), immutable
- layout.py       Layout: which positions a (rank, worker) reads
- plan.py         Plan: language, shard and index of each position in a range (no I/O)
- state.py        StreamState: the saved state and its checks
- corpus_view.py  CorpusView: the manifests of one or more sources as one corpus
- heldout.py      HeldoutStream: a language's held-out split, in order
- weight_spec.py  weights given as ratios, a file or a method, resolved to ratios
- config.py       StreamConfig: the YAML form of the dataset's arguments
- checks.py       bounds shared by the constructor, the config and the state
- worker_exit.py  closing readers when a DataLoader worker exits
"""
