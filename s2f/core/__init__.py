"""The base layer every part of speech2face may import: the user-error type, atomic writes,
progress bars, optional-install checks, the command-line policy, flags from config
dataclasses, shard selection, the split file, the cache folder and array agreement.

It imports nothing of ours and nothing heavy (the standard library and the package's base
dependencies: numpy, tqdm, platformdirs), so the torch-free runtime, the converters that need
only h5py, and training can all share it without one pulling in another's dependencies.
"""
