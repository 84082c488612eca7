"""The upstream Keras models, built from the upstream packages themselves.

Parity means "matches what deepface / keras-vggface compute", so the reference side is never
a copy we wrote: deepface's own ``base_model()`` and keras-vggface's own ``VGGFace()``. Both
need the Keras 2 API (``tf_keras``): keras-vggface 0.6 imports modules that modern Keras no
longer has (``keras.engine.topology``, ``keras_applications``, ``keras.utils.data_utils``),
so those names are pointed at their ``tf_keras`` equivalents while it is imported, and
nothing else in the process sees them.

Also writes Keras files with random weights in the real legacy HDF5 layout, for tests, the
demo and the benchmarks (no weights can be downloaded here).

Needs the ``parity`` extra (tensorflow through tf-keras, deepface, keras-vggface).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from s2f.models.face_encoder_config import FACE_ENCODER_ARCHS  # noqa: E402


def _tf_keras():
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1" and "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set; "
                           "the Keras 2 reference models need it")
    import tf_keras

    return tf_keras


def _import_keras_vggface():
    """Import keras-vggface 0.6 against tf_keras through temporary module aliases."""
    if "keras_vggface.vggface" in sys.modules:
        return sys.modules["keras_vggface.vggface"]
    tf_keras = _tf_keras()
    from tf_keras.src.applications import imagenet_utils
    from tf_keras.src.utils import layer_utils

    keras = types.ModuleType("keras")
    keras.__dict__.update({name: getattr(tf_keras, name) for name in ("layers", "backend", "models")})
    utils = types.ModuleType("keras.utils")
    utils.layer_utils = layer_utils
    utils.get_file = tf_keras.utils.get_file
    data_utils = types.ModuleType("keras.utils.data_utils")
    data_utils.get_file = tf_keras.utils.get_file
    utils.data_utils = data_utils
    engine = types.ModuleType("keras.engine")
    topology = types.ModuleType("keras.engine.topology")
    topology.get_source_inputs = layer_utils.get_source_inputs
    engine.topology = topology
    keras.utils, keras.engine = utils, engine
    applications = types.ModuleType("keras_applications")
    applications_utils = types.ModuleType("keras_applications.imagenet_utils")
    applications_utils._obtain_input_shape = imagenet_utils.obtain_input_shape
    applications.imagenet_utils = applications_utils
    aliases = {
        "keras": keras, "keras.layers": tf_keras.layers, "keras.backend": tf_keras.backend,
        "keras.models": tf_keras.models, "keras.utils": utils, "keras.utils.data_utils": data_utils,
        "keras.engine": engine, "keras.engine.topology": topology,
        "keras_applications": applications, "keras_applications.imagenet_utils": applications_utils,
    }
    saved = {name: sys.modules.get(name) for name in aliases}
    sys.modules.update(aliases)
    try:
        import keras_vggface.vggface as module
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module


def build_keras_model(arch: str, include_top: bool = True):
    """The upstream Keras model for ``arch`` with random initial weights.

    serengil without top is deepface's own descriptor model (fc7 output, no fc8).
    """
    if arch not in FACE_ENCODER_ARCHS:
        raise ValueError(f"unknown architecture {arch!r}")
    spec = FACE_ENCODER_ARCHS[arch]
    tf_keras = _tf_keras()
    if not spec.named_layers:  # deepface's Sequential VGG-Face
        from deepface.models.facial_recognition.tf.VGGFace import base_model

        model = base_model()
        if include_top:
            return model
        flat = tf_keras.layers.Flatten()(model.layers[-5].output)
        return tf_keras.Model(inputs=model.inputs, outputs=flat)
    vggface = _import_keras_vggface()
    return vggface.VGGFace(model=spec.keras_vggface_model, include_top=include_top,
                           weights=None, input_shape=(224, 224, 3))


def keras_descriptor_layer(model, arch: str):
    """The layer whose output is the face descriptor (what ``embed`` must equal), or None."""
    if not FACE_ENCODER_ARCHS[arch].named_layers:  # deepface's VGG-Face
        flatten = [layer for layer in model.layers if layer.__class__.__name__ == "Flatten"]
        weighted = [layer for layer in model.layers if layer.weights]
        return weighted[14] if flatten else None  # fc7 (ReLU fused); flattened by caller
    names = {layer.name for layer in model.layers}
    if arch == "rcmalli-vgg16":
        return model.get_layer("fc7/relu") if "fc7/relu" in names else None
    return model.get_layer("avg_pool")


def randomize_weights(model, seed: int = 0) -> None:
    """Give every weight a reproducible random value with a sane scale (He-normal kernels,
    BatchNorm statistics and affine terms away from their identity defaults, so a wrong
    epsilon or a swapped statistic shows up in parity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = tuple(weight.shape)
            kind = weight.name.rsplit("/", 1)[-1].split(":")[0]
            if kind == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
            elif kind == "gamma" and layer.name.endswith("_1x1_increase/bn"):
                # damp residual branches, as trained ResNets are: random full-scale
                # branches compound over 16 blocks into chaos that amplifies float32
                # rounding by orders of magnitude, in Keras and PyTorch alike
                value = rng.uniform(0.05, 0.2, shape).astype(np.float32)
            elif kind == "gamma":
                value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            elif kind == "moving_variance":
                value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            else:  # bias, beta, moving_mean
                value = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1))
            values.append(value)
        if values:
            layer.set_weights(values)


def write_random_keras_file(path: str | Path, arch: str, include_top: bool = True,
                            whole_model: bool = False, seed: int = 0) -> Path:
    """Build the upstream model, randomise it, and save it as the upstream files are saved:
    ``save_weights`` (legacy HDF5) or, with ``whole_model``, ``model.save`` (``model_weights/``)."""
    path = Path(path)
    model = build_keras_model(arch, include_top)
    randomize_weights(model, seed)
    if whole_model:
        import warnings

        with warnings.catch_warnings():  # the legacy format is the point: it is what upstream ships
            warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`.*")
            model.save(str(path), save_format="h5", include_optimizer=False)
    else:
        model.save_weights(str(path), save_format="h5")
    return path
