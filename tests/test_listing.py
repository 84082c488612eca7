"""One listing of a corpus for every command: nested folders, symbolic links to files and to
folders followed, a loop entered once, hidden, partial and broken entries skipped, one order."""

from __future__ import annotations

import os
from pathlib import Path

from s2f.core.listing import iter_names, list_files, paths_under


def _tree(root: Path) -> Path:
    elsewhere = root / "elsewhere" / "vid9"
    elsewhere.mkdir(parents=True)
    (elsewhere / "00001.wav").write_bytes(b"x")
    corpus = root / "corpus"
    for relative in ["Ann/audios/id1/vid1/00002.WAV", "Ann/audios/id1/vid1/00001.wav", "Ann/audios/id1/vid1-b/1.wav",
                     "Ann/audios/id1/vid1/.hidden.wav", "Ann/audios/id1/vid1/00003.wav.partial",
                     "Ann/audios/id1/vid1/00004.wav.part", "Ann/audios/id1/.cache/x.wav", "Ann/images/a.jpg",
                     "Ann/audios/notes.txt"]:
        (corpus / relative).parent.mkdir(parents=True, exist_ok=True)
        (corpus / relative).write_bytes(b"x")
    os.symlink(elsewhere, corpus / "Ann" / "audios" / "id1" / "vid9")  # a linked folder
    os.symlink(elsewhere / "00001.wav", corpus / "Ann" / "audios" / "id1" / "linked.wav")  # a linked file
    os.symlink(root / "nowhere.wav", corpus / "Ann" / "audios" / "id1" / "broken.wav")
    os.symlink("..", corpus / "Ann" / "audios" / "id1" / "vid1" / "up")  # a loop
    return corpus


def test_one_listing_follows_links_once_and_skips_what_is_not_a_file(tmp_path):
    corpus = _tree(tmp_path)
    names = list(iter_names(corpus, {".wav"}))
    assert names == ["Ann/audios/id1/linked.wav", "Ann/audios/id1/vid1/00001.wav", "Ann/audios/id1/vid1/00002.WAV",
                     "Ann/audios/id1/vid1-b/1.wav", "Ann/audios/id1/vid9/00001.wav"]
    assert names == sorted(names, key=lambda name: Path(name).parts)  # the order of the paths' parts
    assert list_files(corpus / "Ann" / "images") == [Path("a.jpg")]
    assert [str(p) for p in list_files(corpus, None)] == sorted(names[:4] + ["Ann/audios/notes.txt",
                                                                            "Ann/audios/id1/vid9/00001.wav",
                                                                            "Ann/images/a.jpg"],
                                                                   key=lambda name: Path(name).parts)
    assert list_files(tmp_path / "missing", {".wav"}) == [] == paths_under(tmp_path / "missing", {".wav"})
    assert paths_under(corpus / "Ann" / "audios", {".wav"}) == [corpus / "Ann" / "audios" / Path(name).relative_to(
        "Ann/audios") for name in names]


def test_preprocessing_and_the_runtime_reader_see_nested_and_linked_clips(tmp_path):
    """VoxCeleb's <id>/<video>/ nesting and a symlinked audios/ folder, seen alike by
    preprocessing's listing and the runtime's corpus reader (the scorecard's)."""
    from s2f.data.layout import find_files
    from s2f.runtime.evaluate.corpus import read_corpus
    from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES

    corpus = _tree(tmp_path)
    (tmp_path / "bob_audio" / "id2" / "v").mkdir(parents=True)
    (tmp_path / "bob_audio" / "id2" / "v" / "1.m4a").write_bytes(b"x")
    (corpus / "Bob" / "images").mkdir(parents=True)
    (corpus / "Bob" / "images" / "b.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "bob_audio", corpus / "Bob" / "audios")
    people = {person.name: [str(clip.relative_to(corpus)) for clip in person.clips] for person in read_corpus(corpus)}
    preprocessing = [str(path) for path in find_files(corpus, AUDIO_SUFFIXES)]
    assert sorted(clip for clips in people.values() for clip in clips) == sorted(preprocessing)
    assert people["Bob"] == ["Bob/audios/id2/v/1.m4a"] and len(people["Ann"]) == 5
