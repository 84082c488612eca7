"""Speech -> face and face -> face with onnxruntime (or OpenVINO) alone (numpy, PIL, the audio readers).

    from s2f.runtime.pipeline import SpeechToFace
    face = SpeechToFace("bundle/").generate(waveform, sample_rate)   # 224x224x3 uint8

With a bundle's end-to-end graphs (``speech2face.onnx``, ``face2face.onnx``) the Python work
is decoding and resampling; everything else runs in the graph. Bundles without them (or
``end_to_end=False``, or fp16) run the encoder and decoder graphs on inputs prepared by the
same numpy code training used (``s2f.runtime.preprocess.voice_input``, ``s2f.runtime.preprocess.faces``),
with the settings recorded in the manifest; on CUDA the embedding then stays on the GPU
between the two graphs (IOBinding).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.runtime.bundle.manifest import MANIFEST, face_preprocessing
from s2f.runtime.bundle.reader import Bundle, open_bundle
from s2f.runtime.engines.choice import describe, open_graph
from s2f.runtime.engines.onnxruntime import run_graph
from s2f.runtime.engines.options import RunOptions
from s2f.runtime.engines.probe import load_probe
from s2f.runtime.preprocess.audio import AudioSource
from s2f.runtime.preprocess.faces import as_rgb_uint8, decoder_target, preprocess
from s2f.runtime.preprocess.images import load_face
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

log = logging.getLogger(__name__)
OUTPUTS = ["image", "landmarks", "embedding"]  # of speech2face.onnx and face2face.onnx
ALIGNED = "aligned"  # their extra output with a warping decoder: the texture in the mean face's frame


def decoder_output_names(session) -> list[str]:
    """What to ask a decoder graph for: landmarks, texture and, from a warping decoder, aligned_texture."""
    names = {output.name for output in session.get_outputs()}
    return ["landmarks", "texture", *(["aligned_texture"] if "aligned_texture" in names else [])]


def graph_output_names(session) -> list[str]:
    """An end-to-end graph's outputs to ask for: ``OUTPUTS``, then ``aligned`` where it has one."""
    names = {output.name for output in session.get_outputs()}
    return [*OUTPUTS, *([ALIGNED] if ALIGNED in names else [])]


@dataclass
class Face:
    image: np.ndarray  # 224 x 224 x 3 uint8 RGB
    landmarks: np.ndarray  # P x 2 float32 pixels of ``image``
    embedding: np.ndarray  # the face embedding the decoder received
    aligned: np.ndarray | None = None  # a warping decoder's texture in the mean face's frame (uint8), else None


def texture_to_image(texture: np.ndarray) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W x 3 uint8."""
    return np.clip(np.rint(texture.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


class _Decoding:
    """An encoder feeding the bundle's decoder: one end-to-end graph (``end_to_end_role``) when
    the bundle has it, else the encoder graph (``encoder_role``) and the decoder graph with the
    preprocessing in numpy.

    How it runs (engine, precision, device, threads, prepack, verification, trust, end-to-end or
    two-stage) is a ``RunOptions``, given whole or as its fields' keywords
    (``SpeechToFace(bundle, device="cpu", backend="auto")``); see its docstring.
    ``engines`` says what runs each graph.
    """

    encoder_role = ""
    end_to_end_role = ""

    def __init__(self, bundle: Bundle | str | Path, options: RunOptions | None = None, /, **changes) -> None:
        if options is not None and not isinstance(options, RunOptions):
            raise TypeError(f"expected RunOptions or keywords (device=..., backend=...), got {options!r}")
        self.options = options = replace(options or RunOptions(), **changes)
        self.bundle = bundle if isinstance(bundle, Bundle) else open_bundle(bundle, verify=False,
                                                                           cache=options.verify_cache,
                                                                           trust_key=options.trust_key)
        self.device = options.device
        available = self.bundle.has(self.end_to_end_role) and options.graph_precision in (None, "fp32")
        if options.end_to_end and not available:
            why = ("end-to-end graphs are float32 (run them at fp32 or bf16)" if options.graph_precision != "fp32" else
                   f"this bundle has no {self.end_to_end_role}.onnx (exported by an older version: export it again)")
            raise InputError(self.bundle.root, why)
        self.end_to_end = available and options.end_to_end is not False
        self.engines: dict[str, str] = {}
        probe = load_probe(self.bundle) if options.needs_probe else None
        if self.end_to_end:
            self.graph = open_graph(self.bundle, self.end_to_end_role, options, self.engines, probe)
            self.on_cuda = "CUDAExecutionProvider" in self.graph.get_providers()
        else:
            self.decoder = open_graph(self.bundle, "face_decoder", options, self.engines, probe)
            self.encoder = open_graph(self.bundle, self.encoder_role, options, self.engines, probe)
            self.on_cuda = all("CUDAExecutionProvider" in graph.get_providers()
                               for graph in (self.decoder, self.encoder))
        plain = all(what == "onnxruntime fp32" for what in self.engines.values())
        log.log(logging.DEBUG if plain else logging.INFO, "engines: %s", describe(self.engines))

    def _run_end_to_end(self, input_name: str, batch: np.ndarray) -> list[Face]:
        image, landmarks, embedding, *aligned = run_graph(self.graph, graph_output_names(self.graph),
                                                          {input_name: batch})
        count = len(batch) if input_name == "waveform" else 1
        _expect(self.graph, "image", image, np.uint8, (count, IMAGE_SIZE, IMAGE_SIZE, 3))
        _expect(self.graph, "landmarks", landmarks, np.floating, (count, None, 2))
        _expect(self.graph, "embedding", embedding, np.floating, (count, None))
        aligned = aligned[0] if aligned else [None] * len(image)
        return [Face(i, lm, e, a) for i, lm, e, a in zip(image, landmarks, embedding, aligned, strict=True)]

    def _encode_and_decode(self, input_name: str, batch: np.ndarray) -> list[Face]:
        if self.on_cuda:
            embedding, landmarks, texture, *aligned = self._bound(self.encoder, input_name, batch)
        else:
            (embedding,) = run_graph(self.encoder, ["embedding"], {input_name: batch})
            _expect(self.encoder, "embedding", embedding, np.floating, (len(batch), None))
            landmarks, texture, *aligned = run_graph(self.decoder, decoder_output_names(self.decoder),
                                                     {"embedding": embedding})
        _expect(self.decoder, "texture", texture, np.floating, (len(batch), 3, None, None))
        aligned = [texture_to_image(a) for a in aligned[0]] if aligned else [None] * len(texture)
        return [Face(texture_to_image(t), lm.reshape(-1, 2), e, a)
                for t, lm, e, a in zip(texture, landmarks, embedding, aligned, strict=True)]

    def _bound(self, encoder, input_name: str, batch: np.ndarray):
        """IOBinding: input copied to the GPU once, embedding handed over on the device."""
        import onnxruntime as ort

        binding = encoder.io_binding()
        binding.bind_ortvalue_input(input_name, ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
        binding.bind_output("embedding", "cuda")
        encoder.run_with_iobinding(binding)
        embedding = binding.get_outputs()[0]
        decoding = self.decoder.io_binding()
        decoding.bind_ortvalue_input("embedding", embedding)
        for name in decoder_output_names(self.decoder):
            decoding.bind_output(name, "cpu")
        self.decoder.run_with_iobinding(decoding)
        return (embedding.numpy(), *(value.numpy() for value in decoding.get_outputs()))


IMAGE_SIZE = 224  # the decoder's face, and so every graph's image output


def _expect(session, name: str, value: np.ndarray, kind, shape: tuple) -> None:
    """An output must have the dtype and shape the bundle's interface declares (None: any size)
    before anything is made of it."""
    path = getattr(session, "graph_path", None)
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, kind):
        wanted = "uint8" if kind is np.uint8 else "float"
        raise InputError(path, f"output {name!r} is {getattr(value, 'dtype', type(value).__name__)}, expected {wanted}")
    ok = value.ndim == len(shape) and all(want is None or got == want for got, want in zip(value.shape, shape,
                                                                                            strict=False))
    if not ok:
        wanted = "x".join("N" if want is None else str(want) for want in shape)
        raise InputError(path, f"output {name!r} has shape {list(value.shape)}, expected {wanted}")


class SpeechToFace(_Decoding):
    """voice -> face: ``speech2face.onnx`` on the waveform, or the voice encoder and face
    decoder on numpy features. ``prepare*`` gives what ``generate_batch`` takes."""

    encoder_role = "voice_encoder"
    end_to_end_role = "speech2face"

    def __init__(self, bundle: Bundle | str | Path, *args, **kwargs) -> None:
        super().__init__(bundle, *args, **kwargs)
        self.voice = VoiceInputSpec.from_dict(self.bundle.manifest.voice_input)
        self.input_name = "waveform" if self.end_to_end else self.encoder.get_inputs()[0].name

    def _waveform(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim == 2:  # samples x channels
            waveform = waveform.mean(axis=1)
        if waveform.ndim != 1 or waveform.size == 0:
            raise InputError(None, f"expected a non-empty mono (samples) or samples x channels waveform, "
                                   f"got shape {waveform.shape}")
        if sample_rate != self.voice.sample_rate:
            import soxr

            waveform = soxr.resample(waveform, sample_rate, self.voice.sample_rate, quality="VHQ")
        return np.ascontiguousarray(waveform, np.float32)

    def prepare(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """The model input for a waveform at any rate: the 16 kHz waveform itself for the
        end-to-end graph, else the features."""
        waveform = self._waveform(waveform, sample_rate)
        return waveform if self.end_to_end else self.voice.features(waveform)

    def prepare_file(self, source: AudioSource, name: str | None = None) -> np.ndarray:
        """The model input for an audio file, by path or open (only the clip length the model
        uses is decoded; ``name`` is what errors call an open file)."""
        waveform = self.voice.waveform_from_file(source, name)
        return waveform if self.end_to_end else self.voice.features(waveform)

    def generate(self, waveform: np.ndarray, sample_rate: int) -> Face:
        return self.generate_batch([self.prepare(waveform, sample_rate)])[0]

    def generate_from_file(self, path: str | Path) -> Face:
        return self.generate_batch([self.prepare_file(path)])[0]

    def generate_batch(self, inputs: list[np.ndarray]) -> list[Face]:
        """Faces for ``prepare``d inputs, in order. Waveforms of one length share a run."""
        if not self.end_to_end:
            return self._encode_and_decode(self.input_name, np.stack(inputs).astype(np.float32))
        faces: list[Face | None] = [None] * len(inputs)
        by_length: dict[int, list[int]] = {}
        for index, waveform in enumerate(inputs):
            by_length.setdefault(len(waveform), []).append(index)
        for indices in by_length.values():
            batch = np.stack([inputs[i] for i in indices]).astype(np.float32)
            for index, face in zip(indices, self._run_end_to_end("waveform", batch), strict=True):
                faces[index] = face
        return faces


class FaceToFace(_Decoding):
    """photo -> face embedding -> decoded face: ``face2face.onnx`` on the photo, or the face
    encoder and decoder on numpy-preprocessed pixels."""

    encoder_role = "face_encoder"
    end_to_end_role = "face2face"

    def __init__(self, bundle: Bundle | str | Path, *args, **kwargs) -> None:
        super().__init__(bundle, *args, **kwargs)
        self.preprocessing = face_preprocessing(self.bundle.manifest)
        if self.preprocessing is None:
            raise InputError(self.bundle.root / MANIFEST, "field 'face_input' is missing: this bundle was "
                                                                "exported without a face encoder")

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The model input for one RGB photo: the photo itself for the end-to-end graph, else
        the 3 x 224 x 224 array the face encoder takes."""
        return as_rgb_uint8(image) if self.end_to_end else preprocess(image, self.preprocessing)[0]

    def generate(self, image: np.ndarray) -> Face:
        return self.generate_batch([self.prepare(image)])[0]

    def generate_batch(self, inputs: list[np.ndarray]) -> list[Face]:
        """Faces for ``prepare``d inputs, in order (the end-to-end graph takes one photo a run)."""
        if self.end_to_end:
            return [self._run_end_to_end("photo", photo)[0] for photo in inputs]
        return self._encode_and_decode("image", np.stack(inputs).astype(np.float32))

    def prepare_file(self, path: str | Path) -> np.ndarray:
        """The model input for an image file."""
        return self.prepare(load_face(path))

    def generate_from_file(self, path: str | Path) -> Face:
        return self.generate_batch([self.prepare_file(path)])[0]


def original(path: str | Path) -> np.ndarray:
    """The photo as the result grid's first column shows it (the decoder's 224x224 frame)."""
    return decoder_target(load_face(path))
