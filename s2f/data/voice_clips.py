"""Training pairs whose voices are the audio files themselves, for features computed on the
training device (``s2f train voice --features on-the-fly``).

A DataLoader worker decodes the clip (PyAV or libsndfile, resampled to 16 kHz) and applies
the numpy audio steps of ``VoiceInputSpec.model_waveform`` (loudness, loop or crop); the
training step turns the window into the encoder's input (``s2f.train.device_features``). No
feature array touches the disk, and with ``random_crop`` every epoch sees another window of
each clip that is longer than the window.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.data.pairs import VoiceFacePairs, load_array
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

log = logging.getLogger(__name__)


class VoiceClipPairs(VoiceFacePairs):
    """(16 kHz window float32 [samples], face embedding, identity index) pairs.

    Args:
        root: preprocessed tree with the face embeddings (``s2f preprocess faces``).
        voices: the corpus the clips are in, in the same layout (``<identity>/audios/...``).
        spec: the voice input (encoder, window length, loudness, audio steps).
        random_crop: a window at a random start of every clip longer than the window, drawn
            from (``seed``, epoch, clip) so that a resumed run draws the same; off: the
            first window, exactly what ``s2f preprocess audio`` computes features from.
    A clip that cannot be decoded is said once and replaced by the next clip of its identity.
    """

    def __init__(self, root: str | Path, voices: str | Path, spec: VoiceInputSpec, pairing: str = "all_to_one",
                 identities=None, max_clips_per_identity: int | None = None, random_crop: bool = False,
                 seed: int = 0) -> None:
        super().__init__(root, pairing, identities, max_clips_per_identity, clips_root=voices,
                         clip_endings=AUDIO_SUFFIXES)
        self.spec, self.random_crop, self.seed = spec, random_crop, seed
        self.epoch = 0
        self.clip_shape = (spec.samples,)

    def nothing_to_pair(self) -> str:
        return (f"no identity has both voice clips (audios/ under {self.clips.root}) and face embeddings "
                "(images/*_embedding.npy); run 's2f preprocess faces' first")

    def set_epoch(self, epoch: int) -> None:
        """The trainer calls this before each epoch: it picks the epoch's random crops."""
        self.epoch = epoch

    def window(self, clip_index: int) -> np.ndarray:
        """Clip ``clip_index``'s window as the model's features are computed from."""
        path = self.clips[clip_index]
        if not self.random_crop:
            return self.spec.model_waveform(self.spec.waveform_from_file(path))
        waveform = self.spec.waveform_from_file(path, whole=True)
        spare = waveform.size - self.spec.samples
        start = 0
        if spare > 0:
            start = int(np.random.default_rng((self.seed, self.epoch, clip_index)).integers(0, spare + 1))
        return self.spec.model_waveform(waveform, start)

    def load_clip(self, path: Path) -> np.ndarray:
        """The first window of the clip at ``path``."""
        return self.spec.model_waveform(self.spec.waveform_from_file(path))

    def model_input(self, path: Path) -> np.ndarray:
        """The encoder's input from the first window, in numpy: evaluation and the preview grids
        see exactly what ``s2f preprocess audio`` would have stored."""
        return self.spec.encoder_input(self.load_clip(path))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        pair = self.pair(index)
        first, count = int(self.clip_start[pair.identity]), int(self.clip_count[pair.identity])
        for step in range(count):
            clip = first + (pair.clip_index - first + step) % count
            try:
                window = self.window(clip)
                break
            except InputError as err:
                log.warning("%s; its identity's next clip is used instead", err)
        else:
            raise InputError(self.clips[pair.clip_index], f"no clip of identity {self.identities[pair.identity]!r} "
                                                          "could be decoded")
        return window, load_array(pair.face), pair.identity
