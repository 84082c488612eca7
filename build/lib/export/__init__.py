"""PyTorch -> ONNX export of the Speech2Face models (``onnx_export``); the pipeline bundle comes next."""
