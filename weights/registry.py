"""The upstream weight files speech2face can convert.

Neither upstream publishes checksums, so none are listed: ``sha256`` stays ``None`` until a
value is measured on the real file, and nothing is invented. Sizes are listed only where
known exactly; a download is checked against the server's Content-Length, the HDF5/zip
signature, and any size or checksum known here, and its sha256 is printed and stored.
"""

from __future__ import annotations

from dataclasses import dataclass

RCMALLI_BASE = "https://github.com/rcmalli/keras-vggface/releases/download/v2.0/"
DEEPFACE_BASES = (
    "https://github.com/serengil/deepface_models/releases/download/v1.0/",
    "https://huggingface.co/serengil/deepface/resolve/main/",
)


@dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    arch: str
    include_top: bool
    urls: tuple[str, ...]
    description: str
    size: int | None = None  # exact bytes, only where known
    approx_size: str = ""
    sha256: str | None = None  # only where published or measured

    @property
    def signature(self) -> bytes:
        return b"PK\x03\x04" if self.filename.endswith(".pth") else b"\x89HDF\r\n\x1a\n"


def _rcmalli(model: str, top: bool, approx: str) -> WeightFile:
    stem = f"rcmalli_vggface_tf_{'' if top else 'notop_'}{model}.h5"
    return WeightFile(
        name=f"rcmalli-{model}{'' if top else '-notop'}", filename=stem,
        arch=f"rcmalli-{model}", include_top=top, urls=(RCMALLI_BASE + stem,),
        description=f"keras-vggface {model.upper()} ({'with' if top else 'without'} classifier)",
        approx_size=approx,
    )


REGISTRY: dict[str, WeightFile] = {
    entry.name: entry
    for entry in (
        WeightFile(
            name="serengil", filename="vgg_face_weights.h5", arch="serengil", include_top=True,
            urls=tuple(base + "vgg_face_weights.h5" for base in DEEPFACE_BASES),
            description="deepface VGG-Face (Keras), the original Speech-to-Face teacher",
            approx_size="~580 MB",
        ),
        WeightFile(
            name="serengil-pth", filename="vgg_face_weights.pth", arch="serengil", include_top=True,
            urls=tuple(base + "vgg_face_weights.pth" for base in DEEPFACE_BASES),
            description="deepface VGG-Face (PyTorch port shipped by deepface)",
            approx_size="~580 MB",
        ),
        _rcmalli("vgg16", True, "~580 MB"),
        _rcmalli("vgg16", False, "~59 MB"),
        _rcmalli("resnet50", True, "~165 MB"),
        _rcmalli("resnet50", False, "~95 MB"),
        _rcmalli("senet50", True, "~176 MB"),
        _rcmalli("senet50", False, "~105 MB"),
    )
}


def lookup(name: str) -> WeightFile:
    from s2f.core.errors import InputError

    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(None, f"unknown weights {name!r}; known: {', '.join(REGISTRY)}") from None
