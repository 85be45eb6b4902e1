"""The stream: a torch IterableDataset that mixes a corpus at exact ratios and resumes.

- dataset.py      ClimbStream: composes the parts below; the user's entry point
- consumption.py  Consumption: the one owner of the consumed position and its generation
- planner.py      Planner: schedule, orders and epoch caps of a cursor (no I/O)
- context.py      StreamContext: what an iterator may use of its dataset
- iterator.py     StreamIterator: one pass in one process (main or a DataLoader worker)
- loader.py       ClimbDataLoader: a DataLoader that follows the batches it yields
- consumer.py     who iterates the stream (DataLoader, trainer wrappers) and what is refused
- shard_padding.py the stream's batches placed for accelerate's IterableDatasetShard
- state_codec.py  StateCodec: a cursor to and from the saved state
- process_readers.py ProcessReaders: this process's readers, opened after fork
- sample.py       the sample dict, built in one place
- partitioning.py P of the partitioned order: defaults, the node rule
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
