"""PyTorch -> ONNX: each model as a verified graph (``onnx_export``), the speech -> face and
face -> face graphs from raw input to image (``end_to_end``), and the bundle that holds them
with its manifest (``bundle``)."""
