"""What each position of the stream is: pure functions of a cursor and the corpus (no I/O).

- cursor.py       Cursor: (seed, stages, position, partitions, generation), immutable
- plan.py         Plan: language, shard and index of each position in a range
- planner.py      Planner: the Schedule of a cursor's stages, the orders of its (seed, P), epoch caps
- layout.py       Layout: which positions a (rank, worker) reads
- partitioning.py P of the partitioned order: the setting, checked, or the first run's node count
"""
