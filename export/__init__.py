"""PyTorch -> ONNX export of the Speech2Face pipeline (see the export issue; not built yet)."""
