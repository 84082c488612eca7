"""From VoxCeleb and HQ-VoxCeleb downloads to a trained model: ``s2f data voxceleb`` on small
trees in the datasets' exact layouts and with their quirks (tab and " ," separators, a
byte-order mark, a name spelled NFD on disk, a person in both datasets, an id without a name,
names without faces or voice, dev and test roots, a symlinked speaker folder, a link loop),
then one listing of files seen by every command, and ``s2f data stats``."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.helpers import write_m4a

from s2f.assets import SAMPLE_FACE
from s2f.cli import main
from s2f.data.synth import SynthConfig, synthesize_corpus

NFC_NAME = "Belén_Rueda"
# person -> (source, speaker id, dev/test root) of each voice; None: no voice
VOICES = {
    "A.J._Buckley": [("vox1", "id10001", "vox1_dev")],
    NFC_NAME: [("vox1", "id10002", "vox1_dev")],
    "Dominic_Cooper": [("vox1", "id10270", "vox1_test"), ("vox2", "id00012", "vox2_dev")],
    "Ed_Sheeran": [("vox2", "id00015", "vox2_test")],
    "No_Faces": [("vox1", "id10003", "vox1_dev")],
}
FACES = {"A.J._Buckley": ["vox1"], NFC_NAME: ["vox1"], "Dominic_Cooper": ["vox1", "vox2"], "Ed_Sheeran": ["vox2"],
         "Only_Faces": ["vox2"]}
KEPT = ["A.J._Buckley", NFC_NAME, "Dominic_Cooper", "Ed_Sheeran"]
# where each root keeps its speakers, as the zips unpack
SPEAKER_ROOT = {"vox1_dev": "wav", "vox1_test": "wav", "vox2_dev": "dev/aac", "vox2_test": "aac"}


def _meta(hq: Path, root: Path) -> None:
    vox1 = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    vox2 = ["\ufeffClass_ID ,Name ,Sample_Num ,Flag ,Gender_x ,VoxCeleb2ID ,VGGFace2ID ,Gender_y ,Set"]
    for index, (person, voices) in enumerate(VOICES.items()):
        for source, speaker, _ in voices:
            if source == "vox1":
                vox1.append(f"{speaker}\t{person}\tm\tUSA\t{'test' if speaker == 'id10270' else 'dev'}")
            else:
                vox2.append(f"{index} ,{person} ,10 ,1 ,m ,{speaker} ,n00{index} ,m ,dev")
    vox2.append("99 ,Only_Faces ,3 ,1 ,f ,id00099 ,n00099 ,f ,dev")  # listed, but no audio downloaded
    (root / "vox1_meta.csv").write_text("\n".join(vox1) + "\n")
    (hq / "meta_info").mkdir(parents=True)
    (hq / "meta_info" / "full_vox2_meta.csv").write_text("\n".join(vox2) + "\n", encoding="utf-8")
    (hq / "meta_info" / "vox1_names.txt").write_text("\n".join(n for n, f in FACES.items() if "vox1" in f) + "\n")


def _photo(person: int, number: int) -> Image.Image:
    """A real face every landmark detector finds, tinted per person and mirrored per photo
    (synthetic faces are not all found by dlib's detector)."""
    face = np.asarray(Image.open(SAMPLE_FACE).convert("RGB"), np.float32)
    tint = np.random.default_rng(person).uniform(0.6, 1.0, 3)
    face = np.clip(face * tint, 0, 255).astype(np.uint8)
    return Image.fromarray(face[:, ::-1] if number else face)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    """VoxCeleb1/2 and HQ-VoxCeleb as unpacked: synthetic voices, 3 clips in 2 videos a
    speaker, and 2 photos a person."""
    root = tmp_path_factory.mktemp("downloads")
    people = sorted(set(VOICES) | set(FACES))
    synth = root / "synth"
    synthesize_corpus(synth, SynthConfig(identities=len(people) + 1, clips=3, images=1, seconds=1.0))
    sources = sorted(p for p in synth.iterdir() if p.is_dir())
    hq = root / "hq"
    _meta(hq, root)
    for person, made in zip([*people, "unnamed"], sources, strict=True):
        clips = sorted((made / "audios").glob("*.wav"))
        voices = VOICES.get(person, [("vox1", "id10999", "vox1_dev")] if person == "unnamed" else [])
        for source, speaker, download in voices:
            folder = root / download / SPEAKER_ROOT[download] / speaker
            if speaker == "id10002":  # the speaker folder is a link to a folder elsewhere
                folder = root / "elsewhere" / speaker
                (root / download / SPEAKER_ROOT[download]).mkdir(parents=True, exist_ok=True)
                os.symlink(folder, root / download / SPEAKER_ROOT[download] / speaker)
            for number, clip in enumerate(clips):
                video = folder / ("1zcIwhmdeo4" if number < 2 else "7w0IBEWc9Qw")
                video.mkdir(parents=True, exist_ok=True)
                target = video / f"{number % 2 + 1:05d}.{'wav' if source == 'vox1' else 'm4a'}"
                if source == "vox1":
                    shutil.copy(clip, target)
                else:
                    import soundfile

                    samples, rate = soundfile.read(clip, dtype="float32")
                    write_m4a(target, samples, rate)
            if speaker == "id10001":  # a link back to the speaker's own folder: a loop to survive
                os.symlink("..", folder / "1zcIwhmdeo4" / "loop")
        for source in FACES.get(person, []):
            spelled = unicodedata.normalize("NFD", person)  # the tree spells it another way than the table
            for kind in ("masked_faces", "origin_faces"):
                folder = hq / source / kind / spelled
                folder.mkdir(parents=True)
                for number in range(2):
                    _photo(people.index(person), number).save(folder / f"{number:05d}.jpg", quality=95)
    (hq / "vox2" / "masked_faces" / "Only_Faces" / ".DS_Store").write_bytes(b"junk")
    return root


def _ingest(downloads: Path, out: Path, *extra: str, vox1_meta: Path | None = None) -> int:
    return main(["--quiet", "data", "voxceleb", str(downloads / "hq"), "-o", str(out),
                 "--vox1", str(downloads / "vox1_dev"), str(downloads / "vox1_test"),
                 "--vox1-meta", str(vox1_meta or downloads / "vox1_meta.csv"),
                 "--vox2", str(downloads / "vox2_dev"), str(downloads / "vox2_test"), *extra])


def test_ingest_links_our_layout_and_reports_what_it_left_out(downloads, tmp_path, capsys):
    out = tmp_path / "corpus"
    assert _ingest(downloads, out) == 0
    summary = capsys.readouterr().out
    assert "4 identities" in summary and "1 without faces" in summary and "1 ids without a name" in summary
    report = json.loads((out / "ingest.json").read_text())
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(KEPT)
    assert report["identities"] == 4 and report["merged"] == ["Dominic_Cooper"]
    assert report["ids_without_name"] == ["vox1/id10999"]
    assert report["names_without_faces"] == ["No_Faces"] and report["names_without_voice"] == ["Only_Faces"]
    # 3 clips a speaker (the loop is not followed twice), Dominic Cooper's from both datasets under their ids
    clips = {name: sorted(str(p.relative_to(out / name / "audios")) for p in (out / name / "audios").rglob("*.*"))
             for name in KEPT}
    assert clips["A.J._Buckley"] == ["id10001/1zcIwhmdeo4/00001.wav", "id10001/1zcIwhmdeo4/00002.wav",
                                     "id10001/7w0IBEWc9Qw/00001.wav"]
    assert [c.split("/")[0] for c in clips["Dominic_Cooper"]] == ["id00012"] * 3 + ["id10270"] * 3
    assert all(c.endswith(".m4a") for c in clips["Ed_Sheeran"])
    assert report["clips"] == 15 and report["per_source"]["vox2"]["clips"] == 6
    # his photos from both datasets, the second set renamed rather than lost
    assert sorted(p.name for p in (out / "Dominic_Cooper" / "images").iterdir()) == \
        ["00000.jpg", "00001.jpg", "vox2_00000.jpg", "vox2_00001.jpg"]
    assert report["faces"] == 10 and report["renamed_faces"] == 2
    # links, not copies: the same file as the download, through the symlinked speaker folder too
    linked = out / NFC_NAME / "audios" / "id10002" / "1zcIwhmdeo4" / "00001.wav"
    assert unicodedata.is_normalized("NFC", NFC_NAME) and linked.is_file()
    assert os.path.samefile(linked, downloads / "elsewhere" / "id10002" / "1zcIwhmdeo4" / "00001.wav")
    assert report["hard_links"] == report["clips"] + report["faces"] and report["symbolic_links"] == 0
    # masked faces by default: not the origin ones
    masked = downloads / "hq" / "vox1" / "masked_faces" / unicodedata.normalize("NFD", "A.J._Buckley") / "00000.jpg"
    assert os.path.samefile(out / "A.J._Buckley" / "images" / "00000.jpg", masked)

    # a second run changes nothing; another cap rebuilds the corpus
    before = (out / "ingest.json").stat()
    assert _ingest(downloads, out) == 0 and "unchanged" in capsys.readouterr().out
    assert (out / "ingest.json").stat().st_mtime_ns == before.st_mtime_ns
    assert _ingest(downloads, out, "--max-clips-per-video", "1", "--faces", "origin") == 0
    capped = json.loads((out / "ingest.json").read_text())
    assert capped["clips"] == 10 and capped["plan_sha256"] != report["plan_sha256"]
    assert sorted(p.name for p in (out / "A.J._Buckley" / "audios" / "id10001").rglob("*.wav")) == ["00001.wav"] * 2
    origin = downloads / "hq" / "vox1" / "origin_faces" / unicodedata.normalize("NFD", "A.J._Buckley") / "00000.jpg"
    assert os.path.samefile(out / "A.J._Buckley" / "images" / "00000.jpg", origin)


def test_a_folder_it_did_not_write_is_never_replaced(downloads, tmp_path, capsys):
    out = tmp_path / "my_files"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert _ingest(downloads, out) == 2
    assert "another -o" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("case", ["missing column", "unknown separator", "a directory", "no vox1 meta", "cap 0"])
def test_bad_metadata_is_one_line_exit_2_and_the_corpus_untouched(downloads, tmp_path, capsys, case):
    out = tmp_path / "corpus"
    assert _ingest(downloads, out) == 0
    before = (out / "ingest.json").read_bytes()
    capsys.readouterr()
    meta = tmp_path / "vox1_meta.csv"
    text = (downloads / "vox1_meta.csv").read_text()
    extra: list[str] = []
    if case == "missing column":
        meta.write_text(text.replace("VGGFace1 ID", "Name"))
        expected = ["vox1_meta.csv", "'VGGFace1 ID'"]
    elif case == "unknown separator":
        meta.write_text(text.replace("\t", ";"))
        expected = ["vox1_meta.csv", "separator"]
    elif case == "a directory":
        meta.mkdir()
        expected = ["vox1_meta.csv", "directory"]
    elif case == "cap 0":
        extra, meta, expected = ["--max-clips-per-video", "0"], downloads / "vox1_meta.csv", ["--max-clips-per-video"]
    if case == "no vox1 meta":
        code = main(["data", "voxceleb", str(downloads / "hq"), "-o", str(out), "--vox1",
                     str(downloads / "vox1_dev")])
        expected = ["--vox1-meta"]
    else:
        code = _ingest(downloads, out, *extra, vox1_meta=meta)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert all(word in err for word in expected), err
    assert (out / "ingest.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half corpus beside it


def _corpus_listings(corpus: Path) -> dict[str, dict[str, int]]:
    """clips per identity as preprocessing, the runtime's corpus reader and stats see them."""
    from s2f.data.layout import find_files, identity_of
    from s2f.runtime.evaluate.corpus import read_corpus
    from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES

    preprocessing: dict[str, int] = {}
    for relative in find_files(corpus, AUDIO_SUFFIXES):
        preprocessing[identity_of(relative)] = preprocessing.get(identity_of(relative), 0) + 1
    runtime = {person.name: len(person.clips) for person in read_corpus(corpus)}
    return {"preprocessing": preprocessing, "runtime": runtime}


@pytest.mark.slow
def test_an_ingested_corpus_is_preprocessed_trained_and_scored(downloads, tmp_path):
    """Every command sees the same files (a symlinked audios/ folder added), then preprocess,
    a tiny training run, the SF2F evaluation and the runtime's scorecard run on the corpus."""
    from s2f.data.pairs import VoiceFacePairs
    from s2f.data.synth_teacher import synthetic_face_encoder
    from s2f.runtime.cli import main as runtime_main

    corpus = tmp_path / "corpus"
    assert _ingest(downloads, corpus) == 0
    # a user links one more person in by folder, not by file
    extra = tmp_path / "linked_person"
    shutil.copytree(corpus / "A.J._Buckley", extra, symlinks=False)
    (corpus / "Z_Linked").mkdir()
    os.symlink(extra / "audios", corpus / "Z_Linked" / "audios")
    os.symlink(extra / "images", corpus / "Z_Linked" / "images")
    listed = _corpus_listings(corpus)
    expected = {"A.J._Buckley": 3, NFC_NAME: 3, "Dominic_Cooper": 6, "Ed_Sheeran": 3, "Z_Linked": 3}
    assert listed == {"preprocessing": expected, "runtime": expected}

    encoder = synthetic_face_encoder(0).save_pretrained(tmp_path / "face_encoder")
    pre, split = tmp_path / "pre", tmp_path / "split.json"
    steps = [
        ["preprocess", "audio", corpus, pre, "--encoder", "ve_conv", "--seconds", "3", "--workers", "1"],
        ["preprocess", "faces", corpus, pre, "--face-encoder", encoder, "--landmarks", "dlib72", "--workers", "1"],
        ["data", "split", pre, "-o", split, "--fractions", "0.4", "0.2", "0.4", "--exact"],
        ["train", "decoder", pre, "-o", tmp_path / "decoder", "--split", split, "--size", "tiny", "--epochs", "1",
         "--batch-size", "4"],
        ["train", "voice", pre, "-o", tmp_path / "voice", "--encoder", "ve_conv", "--split", split, "--size", "tiny",
         "--epochs", "1", "--batch-size", "4", "--decoder", tmp_path / "decoder"],
        ["evaluate", tmp_path / "voice", pre, "--split", split, "--protocol", "sf2f", "--decoder",
         tmp_path / "decoder", "--face-encoder", encoder, "-o", tmp_path / "card.json"],
        ["export", "bundle", "--voice-encoder", tmp_path / "voice", "--decoder", tmp_path / "decoder",
         "--face-encoder", encoder, "-o", tmp_path / "bundle"],
    ]
    for step in steps:
        assert main(["--quiet", *map(str, step)]) == 0, step
    pairs = VoiceFacePairs(pre, "all_to_one")
    assert pairs.identities == sorted(expected) and len(pairs) == sum(expected.values())
    card = json.loads((tmp_path / "card.json").read_text())
    test_people = json.loads(split.read_text())["test"]
    assert card["identities"] == len(test_people) == 2
    assert card["speech_to_face"]["queries"] == sum(expected[name] for name in test_people)
    assert runtime_main(["--quiet", "scorecard", str(corpus), "--bundle", str(tmp_path / "bundle"), "--split",
                         str(split), "-o", str(tmp_path / "runtime_card.json")]) == 0
    runtime_card = json.loads((tmp_path / "runtime_card.json").read_text())
    assert runtime_card["identities"] == 2
    assert runtime_card["speech_to_face"]["queries"] == card["speech_to_face"]["queries"]
    grid = np.asarray(Image.open(runtime_card["grid"]))
    assert grid.std() > 10  # faces, not a blank page


def test_stats_measure_the_training_clips_and_preprocessing_uses_them(downloads, tmp_path, capsys):
    from s2f.data.feature_stats import AUDIO_STATS
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    corpus = tmp_path / "corpus"
    assert _ingest(downloads, corpus) == 0
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["A.J._Buckley", "Ed_Sheeran"], "val": [], "test": KEPT[1:3]}))
    assert main(["--quiet", "data", "stats", str(corpus), "--split", str(split), "--max-clips", "0",
                 "--workers", "1"]) == 0
    assert AUDIO_STATS in capsys.readouterr().out
    stats = json.loads((corpus / AUDIO_STATS).read_text())
    # the float64 mean and std of exactly the training people's raw fbank values
    raw = VoiceInputSpec("ast", mean=0.0, std=0.5)
    clips = sorted((corpus / "A.J._Buckley" / "audios").rglob("*.wav")) + \
        sorted((corpus / "Ed_Sheeran" / "audios").rglob("*.m4a"))
    values = np.concatenate([raw.features_from_file(clip).ravel().astype(np.float64) for clip in clips])
    assert stats["clips"] == stats["of_clips"] == 6 and stats["identities"] == 2
    assert stats["mean"] == pytest.approx(values.mean(), rel=1e-6) and stats["std"] == pytest.approx(values.std(),
                                                                                                    rel=1e-6)
    assert abs(stats["mean"] - VoiceInputSpec("ast").mean) > 0.1  # not AudioSet's numbers
    # picked up by preprocessing: its features are normalised with them, and the tree records them
    pre = tmp_path / "pre"
    assert main(["--quiet", "preprocess", "audio", str(corpus), str(pre), "--encoder", "ast", "--workers", "1"]) == 0
    settings = json.loads((pre / "audio_features.json").read_text())
    assert (settings["mean"], settings["std"]) == (stats["mean"], stats["std"])
    # measured again on the preprocessed tree (its normalisation undone): the same numbers
    assert main(["--quiet", "data", "stats", str(pre), "--split", str(split), "--max-clips", "0",
                 "--workers", "1"]) == 0
    again = json.loads((pre / AUDIO_STATS).read_text())
    assert again["source"] == "features" and again["clips"] == 6
    assert again["mean"] == pytest.approx(stats["mean"], rel=1e-5) and again["std"] == pytest.approx(stats["std"],
                                                                                                     rel=1e-5)
