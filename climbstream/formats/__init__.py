"""The on-disk contracts both sides share: the manifest, MDS and WebDataset tar layouts.

- manifest.py  Manifest: climbstream-manifest.json, loaded and checked
- mds.py       MDS headers and column decoding
- wds.py       tar member offsets

The read side is climbstream/read/, the write side climbstream/prepare/.
"""
