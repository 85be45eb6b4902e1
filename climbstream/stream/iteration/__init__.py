"""One pass over the stream in one process (the main process or a DataLoader worker).

- iterator.py        StreamIterator: produces this (rank, worker)'s samples of each global batch
- context.py         StreamContext: what an iterator may use of its dataset
- loader.py          ClimbDataLoader: a DataLoader that follows the batches it yields
- process_readers.py ProcessReaders: this process's readers, opened after fork
- sample.py          the sample dict, built in one place
- worker_exit.py     closing readers when a DataLoader worker exits
"""
