"""Keras VGGFace weights (HDF5) and existing PyTorch ports -> speech2face safetensors.

Reading uses h5py only: converting needs neither TensorFlow nor torch.
"""
