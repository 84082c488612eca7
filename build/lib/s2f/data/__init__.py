"""Data pipeline: raw identity folders -> preprocessed arrays -> training pairs.

Raw and preprocessed trees share one layout (the original project's, matching HQ-VoxCeleb
and the VoxCeleb1/2 audio filtered to its identities)::

    ROOT/<identity>/audios/...   voice clips (raw) or their features (.npy)
    ROOT/<identity>/images/...   face photos (raw) or <stem>_embedding / _landmarks / _target .npy

Everything here but the dataset's optional torch conversion is numpy: preprocessing uses
``runtime`` so training and serving compute identical inputs.
"""
