"""speech2face: the Speech2Face system (voice -> face) on PyTorch and ONNX.

Importing this package is cheap: it does not import torch. Model code lives in
``s2f.models`` and imports torch itself.
"""

__version__ = "0.1.0"
