"""The torch-free layer of speech2face.

Everything here runs on numpy (and, for inference, onnxruntime) alone, so it can ship in a
lean serving environment. Training code imports its preprocessing from here, never the other
way round: training and serving then compute identical inputs by construction.

This package must never import torch (a test enforces it).
"""
