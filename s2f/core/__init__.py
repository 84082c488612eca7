"""The base layer every part of speech2face may import: the user-error type, atomic writes,
progress bars, optional-install checks, the command-line policy, shard selection and the
split file.

It imports nothing of ours and nothing heavy (the standard library and, lazily, tqdm), so the
torch-free runtime, the converters that need only h5py, and training can all share it without
one of them pulling in another's dependencies.
"""
