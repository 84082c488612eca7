"""The base layer (``s2f.core``) and the one-schema rules: flags generated from the config
dataclasses, the cache folder, the split file, the manifest schema and the bench report."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
from support.helpers import REPO

from s2f.core.config_flags import add_config_flags, config_from_args, field_help
from s2f.core.errors import InputError
from s2f.runtime.engines.options import RunOptions as _RunOptions


def _parser_of(build, *path: str) -> argparse.ArgumentParser:
    """The (sub)parser reached by the subcommand ``path`` of a command line's parser."""
    parser = build()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def _defaults(parser: argparse.ArgumentParser) -> dict:
    return {a.dest: a.default for a in parser._actions if a.option_strings and a.dest != "help"}


def _check_against(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = (), overrides: dict | None = None):
    flags = _defaults(parser)
    checked = 0
    for spec in dataclasses.fields(cls):
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if spec.name in skip or required or spec.name not in flags or spec.name == "train":
            continue
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        expected = (overrides or {}).get(spec.name, default)
        assert flags[spec.name] == expected, f"--{spec.name}: flag default {flags[spec.name]!r}, dataclass {expected!r}"
        checked += 1
    return checked


def test_runtime_flags_are_the_config_dataclasses():
    from s2f.runtime.cli import build_parser
    from s2f.runtime.engines.options import RunOptions
    from s2f.runtime.serve.server import ServeConfig

    serve = _parser_of(build_parser, "serve")
    assert _check_against(serve, ServeConfig) == 12  # every field with a default but the nested options
    text = serve.format_help()
    assert "--decode-threads" in text and "larger request bodies get 413. (default: 20.0)" in " ".join(text.split())
    for command in ("speech2face", "face2face", "grid", "scorecard", "serve"):
        parser = _parser_of(build_parser, command)
        # every run option but prepack, which the command decides (one file: off)
        assert _check_against(parser, RunOptions) == len(dataclasses.fields(RunOptions)) - 1, command


@pytest.mark.parametrize("module", ["runtime/cli.py", "s2f/data/cli.py", "s2f/train/cli.py", "export/cli.py",
                                    "export/signing_cli.py", "converters/cli.py", "weights/cli.py", "s2f/demo_cli.py"])
def test_no_flag_of_these_commands_is_written_by_hand(module):
    """Each comes from a dataclass field: its default and help live once, on the dataclass."""
    assert "add_argument(" not in (REPO / module).read_text()


def test_data_command_flags_are_their_dataclasses():
    from s2f.cli import build_parser
    from s2f.data.feature_stats import StatsConfig
    from s2f.data.jobs import JobOptions
    from s2f.data.preprocess_audio import AudioPreprocessing
    from s2f.data.preprocess_faces import FacePreprocessing
    from s2f.data.split import SplitConfig
    from s2f.data.synth import SynthConfig
    from s2f.data.voxceleb import VoxCelebSources

    for path, classes in ((("preprocess", "audio"), (AudioPreprocessing, JobOptions)),
                          (("preprocess", "faces"), (FacePreprocessing, JobOptions)),
                          (("data", "synth"), (SynthConfig,)), (("data", "voxceleb"), (VoxCelebSources,)),
                          (("data", "stats"), (StatsConfig,)), (("data", "split"), (SplitConfig,))):
        parser = _parser_of(build_parser, *path)
        for cls in classes:
            assert _check_against(parser, cls) >= 2, (path, cls)
    faces = _parser_of(build_parser, "preprocess", "faces")
    args = faces.parse_args(["raw/", "pre/", "--face-encoder", "enc", "--workers", "3", "--shard", "1/4"])
    config = config_from_args(FacePreprocessing, args)
    assert (str(config.data_dir), str(config.out_dir), config.jobs) == ("raw", "pre", JobOptions(3, False, "1/4"))
    assert str(config.jobs.resolved_shard()).startswith("shard 1/4")


@dataclasses.dataclass
class _Clash:
    """A config whose own field has the name of one in the config it nests."""

    device: str = "cpu"
    run: _RunOptions = dataclasses.field(default_factory=lambda: _RunOptions())


def test_nested_configs_positionals_and_named_off_switches_round_trip():
    from s2f.runtime.cli import ConvertCommand, build_parser
    from s2f.runtime.engines.options import RunOptions

    parser = _parser_of(build_parser, "speech2face")
    args = parser.parse_args(["clips/", "-o", "faces/", "--bundle", "b", "--rehash", "--two-stage", "--threads", "3"])
    command = config_from_args(ConvertCommand, args)
    assert (str(command.input), str(command.output), str(command.bundle)) == ("clips", "faces", "b")
    assert command.run == RunOptions(threads=3, verify_cache=False, end_to_end=False)
    plain = config_from_args(ConvertCommand, parser.parse_args(["a.wav", "-o", "a.png", "--bundle", "b"]))
    assert plain.run == RunOptions() and plain.run.end_to_end is None  # neither switch: the bundle decides
    insist = config_from_args(ConvertCommand, parser.parse_args(["a.wav", "-o", "a.png", "--bundle", "b",
                                                                 "--end-to-end"]))
    assert insist.run.end_to_end is True
    with pytest.raises(SystemExit):  # the two switches of one field exclude each other
        parser.parse_args(["a.wav", "-o", "a.png", "--bundle", "b", "--end-to-end", "--two-stage"])
    with pytest.raises(TypeError, match="repeat the field"):
        add_config_flags(argparse.ArgumentParser(), _Clash)


def test_train_and_evaluate_flags_are_the_run_dataclasses():
    from s2f.cli import build_parser
    from s2f.train.options import DECODER_RECIPE, TrainConfig
    from s2f.train.runs import DecoderTraining, Evaluation, VoiceTraining

    decoder, voice = _parser_of(build_parser, "train", "decoder"), _parser_of(build_parser, "train", "voice")
    assert _check_against(decoder, TrainConfig, overrides=DECODER_RECIPE) == len(dataclasses.fields(TrainConfig))
    assert _check_against(voice, TrainConfig) == len(dataclasses.fields(TrainConfig))
    assert _check_against(decoder, DecoderTraining) >= 9
    assert _check_against(voice, VoiceTraining, skip=("encoder",)) >= 14  # --encoder is required
    assert _check_against(_parser_of(build_parser, "evaluate"), Evaluation) >= 7
    # the loss weights' defaults are the losses' own
    from s2f.train.options import DecoderLossWeights

    assert _defaults(decoder)["w_landmarks"] == DecoderLossWeights().landmarks == 0.01
    assert "--no-mean-start" in decoder.format_help() and "--no-warp" in decoder.format_help()


def test_flags_round_trip_into_the_dataclass_and_refusals_name_the_flag():
    from s2f.runtime.serve.server import ServeConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle")
    add_config_flags(parser, ServeConfig, exclude=("bundle",))
    config = config_from_args(ServeConfig, parser.parse_args(["--bundle", "b", "--max-batch", "3", "--two-stage"]))
    assert (config.max_batch, config.run.end_to_end, config.max_queue, str(config.bundle)) == (3, False, 64, "b")
    with pytest.raises(InputError, match=r"--max-batch\) must be at least 1"):
        config_from_args(ServeConfig, parser.parse_args(["--bundle", "b", "--max-batch", "0"]))


def test_docstring_entries_name_fields_and_continue_on_indented_lines():
    @dataclasses.dataclass
    class Example:
        """Args:
            a, b: shared text
                that continues.
            c: its own (50% of it).
        """

        a: int = 1
        b: float = 2.0
        c: tuple[float, float] = (0.5, 0.25)

    assert field_help(Example) == {"a": "shared text that continues.", "b": "shared text that continues.",
                                   "c": "its own (50% of it)."}
    parser = argparse.ArgumentParser()
    add_config_flags(parser, Example)
    assert parser.parse_args(["--c", "1", "2"]).c == [1.0, 2.0]
    assert "(50% of it). (default: 0.5 0.25)" in " ".join(parser.format_help().split())


def test_one_cache_folder_and_one_variable(tmp_path, monkeypatch):
    from s2f.core.cache import cache_dir
    from s2f.runtime.bundle.verify_cache import cache_path
    from s2f.weights.fetch import default_cache_dir

    monkeypatch.setenv("S2F_CACHE", str(tmp_path / "mine"))
    assert cache_path() == tmp_path / "mine" / "verified.json"
    assert default_cache_dir() == tmp_path / "mine" / "weights"
    monkeypatch.delenv("S2F_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "speech2face"  # platformdirs on Linux


def test_split_file_is_read_once_and_edits_fail_in_one_line(tmp_path):
    from s2f.core.splits import read_split

    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["a", "b"], "val": [], "test": ["c"], "seed": 0}))
    assert read_split(path) == {"train": ["a", "b"], "val": [], "test": ["c"]} and read_split(None) is None
    path.write_text(json.dumps({"train": ["a"], "test": ["c"]}))
    with pytest.raises(InputError, match="split.json: not a split file .*KeyError: 'val'"):
        read_split(path)
    path.write_text(json.dumps({"train": [1], "val": [], "test": []}))
    with pytest.raises(InputError, match="must be strings"):
        read_split(path)


def test_manifest_schema_round_trips_and_refuses_a_bad_field(tmp_path):
    from s2f.runtime.bundle.manifest import GRAPH_FILES, BundleManifest, FileEntry

    digest = "0" * 64
    manifest = BundleManifest(
        files={GRAPH_FILES["voice_encoder"]: FileEntry("voice_encoder", digest, 10, "fp32", "voice_encoder.onnx.data",
                                                       "ve_conv", {"x": ["batch"]}, ["embedding"], {}, 16),
               "voice_encoder.onnx.data": FileEntry("voice_encoder weights", digest, 5)},
        voice_input={"encoder": "ve_conv", "variant": "paper", "seconds": 6.0, "sample_rate": 16000,
                     "target_dbfs": -23.0, "mean": 0.0, "std": 1.0})
    raw = json.loads(json.dumps(manifest.to_dict()))
    assert list(raw)[:3] == ["format", "versions", "files"]
    assert "precision" not in raw["files"]["voice_encoder.onnx.data"]  # weights entries carry no interface
    again = BundleManifest.parse(tmp_path / "manifest.json", raw)
    assert again == manifest and again.path_of("voice_encoder") == "voice_encoder.onnx"
    assert again.files["voice_encoder.onnx"].weight_files == ["voice_encoder.onnx.data"]
    raw["files"]["voice_encoder.onnx"]["bytes"] = -1
    with pytest.raises(InputError, match=r"manifest.json: field 'files.voice_encoder.onnx.bytes' must be in"):
        BundleManifest.parse(tmp_path / "manifest.json", raw)


def test_bench_report_is_current():
    """bench/README.md and the README's headline figures are what bench/results/ holds."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "report.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_every_bench_has_a_finding_whose_numbers_come_from_its_results():
    sys.path.insert(0, str(REPO / "bench"))
    import findings
    import report

    assert {results for results, *_ in report.SECTIONS} <= set(findings.FINDINGS)
    data = {"a": {"b c": 2.5, "n": 1234567}, "rows": [{"x": 1}, {"x": 7}]}
    sentence = findings.fill("{a|b c}× over {a|n;,} clips, worst {rows|*|x}", data, report.number)
    assert sentence == "2.5× over 1,234,567 clips, worst 7"
    with pytest.raises(KeyError, match=r"\{a\|missing\}"):
        findings.fill("{a|missing}", data, report.number)
    front = (REPO / "bench" / "README.md").read_text()
    headings = {report.anchor(line[3:]) for line in front.splitlines() if line.startswith("## ")}
    import re

    links = re.findall(r"bench/README\.md#([a-z0-9-]+)", (REPO / "README.md").read_text())
    assert links and sorted(set(links) - headings) == []  # every how-to's "Measured:" link lands on a bench


def test_bench_report_renders_the_results_it_reads(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "bench"))
    import report

    assert report.number(0.123456) == "0.1235" and report.number(2.5e-7) == "2.5e-07" and report.number(True) == "yes"
    lines = report.render_mapping("", {"a": 1, "groups": {"x": {"p": 1.5, "q": 2}, "y": {"p": 3, "q": 4}}}, 0)
    assert "| a | 1 |" in lines and "| x | 1.5 | 2 |" in lines and "| y | 3 | 4 |" in lines
    page = report.render()
    learning = json.loads((REPO / "bench" / "results" / "learning.json").read_text())
    assert report.number(learning["summary"]["recall@5_over_chance"]) in page


@pytest.mark.isa
def test_the_cpu_features_are_the_ones_the_kernels_dispatch_on():
    """CPUID through numpy, not /proc/cpuinfo (which describes the host under qemu): it must
    agree with PyTorch's own choice of kernels."""
    import platform

    import torch

    from s2f.core.cpu import cpu_description, cpu_features, int8_class

    features = cpu_features()
    if platform.machine() in ("x86_64", "AMD64"):
        capability = torch.backends.cpu.get_cpu_capability()
        assert ("avx512f" in features) == capability.startswith("AVX512"), (features, capability)
        assert ("avx2" in features) == (capability != "DEFAULT"), (features, capability)
        assert int8_class() in ("vnni", "avx512", "avx2")
    described = cpu_description()
    assert described["features"] == list(features) and described["class"] == int8_class() and described["model"]
