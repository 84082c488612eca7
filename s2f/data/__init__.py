"""Data pipeline: raw identity folders -> preprocessed arrays -> training pairs.

Raw and preprocessed trees share one layout (the original project's; ``s2f data voxceleb``
links the VoxCeleb and HQ-VoxCeleb downloads into it, ``s2f.data.voxceleb``)::

    ROOT/<identity>/audios/...   voice clips (raw, at any depth: <id>/<video>/<clip>) or their features (.npy)
    ROOT/<identity>/images/...   face photos (raw) or <stem>_embedding / _landmarks / _target .npy

Everything here but the dataset's optional torch conversion is numpy: preprocessing uses
``runtime`` so training and serving compute identical inputs.
"""
