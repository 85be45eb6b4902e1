"""The schedule: which language, and which sample of it, sits at global position p.

- `weights.py`   WEIGHT_TOTAL, ratios -> integer weights, the one check of a stage's weights
- `warm.py`      every compiled kernel loaded before DataLoader workers fork
- `schedule.py`  Schedule, Stage: block-exact staged mixing, random access by position
- `order.py`     LanguageOrder, language_key: the k-th draw of a language -> (shard, index, epoch)
- `tree.py`      the Huffman tree that splits a stage's positions among languages
- `kernels.py`   numba kernels for tree counts and block generation (with the bound's proof)
- `parts.py`     each language's draws and samples split over P partitions (closed forms)
- `placement.py` a global batch's draws arranged so each partition's slice holds its own
- `partitioned.py` PartitionedOrders: the partitioned order that `plan_range` reads
- `rng.py`       counter-based random numbers, Fisher-Yates and Feistel permutations

Pure functions of their inputs (numpy in, numpy out); nothing here does I/O. The modules
are not imported here so that `import climbstream.schedule` does not load numba.
"""
