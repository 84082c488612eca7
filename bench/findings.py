"""What each bench found, in one sentence, and the one table it rests on: the front page of
``bench/README.md`` (``report.py``); every other figure is on ``bench/details.md``.

A sentence is a template whose ``{a|b|c}`` fields are paths into the bench's results file
(``;fmt`` a format spec, ``;MB`` bytes in megabytes, ``*`` the largest over a list), so a
finding always says what the file says. A table is either a path to a group of like records
with the columns to show, or a function of the results (side-by-side tables across machines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_FIELD = re.compile(r"\{([^{};]+)(?:;([^{}]+))?\}")


@dataclass(frozen=True)
class Finding:
    """sentence: the template; table: (results, number formatter) -> the table's lines, or
    None for a finding without one."""

    sentence: str
    table: Callable[[Any, Callable[[Any], str]], list[str]] | None = None


def lookup(data: Any, path: str) -> Any:
    keys = path.split("|")
    for index, key in enumerate(keys):
        if key == "*":
            return max(lookup(item, "|".join(keys[index + 1:])) for item in data)
        data = data[key]
    return data


def fmt(value: Any, spec: str | None, number: Callable[[Any], str]) -> str:
    if spec == "MB":
        return f"{value / 1e6:,.0f}"
    if spec:
        return format(value, spec)
    return number(value)


def fill(template: str, data: Any, number: Callable[[Any], str]) -> str:
    """The sentence with every field replaced by its value in ``data``."""

    def value(match: re.Match) -> str:
        try:
            return fmt(lookup(data, match.group(1)), match.group(2), number)
        except (KeyError, IndexError, TypeError) as err:
            raise KeyError(f"{{{match.group(1)}}}: no {err} in the results") from None

    return _FIELD.sub(value, template)


def records_table(records: Any, columns: tuple[str, ...], number: Callable[[Any], str]) -> list[str]:
    """Rows of like records (a dict's keys, or a list's first field, name the rows)."""
    items = list(records.items()) if isinstance(records, dict) else [(None, r) for r in records]
    columns = columns or tuple(k for k, v in items[0][1].items() if not isinstance(v, dict | list))
    head = ([""] if items[0][0] is not None else []) + [column.replace("|", " ") for column in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, record in items:
        cells = [number(lookup(record, column)) if _has(record, column) else "" for column in columns]
        lines.append("| " + " | ".join(([str(name)] if name is not None else []) + cells) + " |")
    return lines


def _has(record: Any, path: str) -> bool:
    try:
        lookup(record, path)
        return True
    except (KeyError, TypeError, IndexError):
        return False


def _training_side_by_side(data: Any, number: Callable[[Any], str]) -> list[str]:
    """Training samples/s, this CPU against the H200 of gpu_check.json, per model."""
    gpu_path = RESULTS / "gpu_check.json"
    gpu = json.loads(gpu_path.read_text()) if gpu_path.is_file() else {}
    machine = data.get("machine", {})
    cpu = f"{machine['cpu']}, {machine.get('cores', '?')} cores" if "cpu" in machine else "CPU (not recorded)"
    card = gpu.get("gpu", "GPU")
    lines = [f"| model | {cpu}: tiny | full | {card}: fp32 | bf16 AMP |", "|---|---|---|---|---|"]
    for model in ("face_decoder", "ve_conv", "ast"):
        on_gpu = next((v for k, v in gpu.get("training", {}).items() if k.startswith(model + " ")), {})
        cells = [data["models"].get(f"{model} tiny", {}).get("samples_per_s"),
                 data["models"].get(f"{model} full", {}).get("samples_per_s"),
                 on_gpu.get("fp32", {}).get("samples_per_s"), on_gpu.get("amp_bf16", {}).get("samples_per_s")]
        lines.append(f"| {model} | " + " | ".join("" if c is None else number(c) for c in cells) + " |")
    return lines + ["", "samples/s; CPU batches as in the file (full VE_conv and AST: 2), GPU batches 32 (AST 16)."]


def _int8_side_by_side(data: Any, number: Callable[[Any], str]) -> list[str]:
    """Cosine to float64 of each int8 scheme, this CPU against an emulated AVX2 one, per model."""
    native, emulated = data["native"], data["emulated_avx2"]
    where = " ".join(emulated["cpu"].get("features", [])) if isinstance(emulated["cpu"], dict) else emulated["cpu"]
    lines = [f"| model, scheme | {native['cpu']['class']} ({native['cpu']['model']}) | AVX2 (emulated: {where}) |",
             "|---|---|---|"]
    for key, cosine in emulated["cosine"].items():  # the emulated run (qemu is slow) uses the tiny models
        here = native["cosine"].get("tiny", {}).get(key)
        lines.append(f"| {key.replace('/', ' ')} | {'' if here is None else number(here)} | {number(cosine)} |")
    return lines + ["", f"The bar is {number(data['bar'])}: below it, export refuses the int8 graph."]


def _original_models_table(data: Any, number: Callable[[Any], str]) -> list[str]:
    lines = ["| encoder | way | per clip, s | speed-up per clip | cold start, s | speed-up at start | image levels |",
             "|---|---|---|---|---|---|---|"]
    for encoder, ways in data["encoders"].items():
        for way, row in ways.items():
            if not isinstance(row, dict):
                continue
            cells = [row.get("per_clip_s"), row.get("speedup_per_clip"), row.get("cold_start_s"),
                     row.get("speedup_cold_start"), row.get("agreement", {}).get("image_max_levels")]
            lines.append(f"| {encoder} | {way} | " + " | ".join("" if c is None else number(c) for c in cells) + " |")
    return lines


def _engine_table(data: Any) -> list[str]:
    """Every model and the pipeline, every engine and PyTorch mode: the README's table, whole."""
    import report

    return report.engine_rows(data).split("\n")


def _data_scale_table(data: Any, number: Callable[[Any], str]) -> list[str]:
    scale = data["scale"]
    lines = ["| clips | listing, s | listing peak MB | index, s | index B/clip | rerun, s |",
             "|---|---|---|---|---|---|"]
    for size in scale["listing"]:
        listing, index, rerun = scale["listing"][size], scale["index"][size], scale["rerun"][size]
        lines.append(f"| {int(size):,} | {number(listing['seconds'])} | {number(listing['peak_rss_mb'])} | "
                     f"{number(index['seconds'])} | {number(index['index_bytes_per_clip'])} | "
                     f"{number(rerun['seconds'])} |")
    return lines


SERVE_SENTENCE = ("With 8 clients, micro-batching gives {results|8 clients batched|speedup_vs_unbatched}× the "
                  "unbatched throughput ({results|8 clients batched|requests_per_s} requests/s, p99 "
                  "{results|8 clients batched|p99_s} s), and OpenVINO bf16 "
                  "{results|8 clients batched openvino:bf16|over_onnxruntime}× onnxruntime's.")

def _seed_spread(data: Any, number: Callable[[Any], str]) -> list[str]:
    """Worst (its seed), median and best of each figure over the corpus seeds: one column per
    variant, the demo's recipe first."""
    variants = sorted(data["variants"], key=lambda v: (v != "demo", v != "before", v))
    lines = ["| figure | " + " | ".join(f"{v}: worst (seed) / median / best" for v in variants) + " |",
             "|---|" + "---|" * len(variants)]
    for figure in data["variants"][variants[0]]["distribution"]:
        cells = []
        for variant in variants:
            spread = data["variants"][variant]["distribution"].get(figure)
            cells.append(f"{number(spread['worst'])} ({spread['worst_seed']}) / {number(spread['median'])} / "
                         f"{number(spread['best'])}" if spread else "")
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines


FINDINGS: dict[str, Finding] = {
    "convert_speed.json": Finding(
        "`s2f convert` turns the {file_bytes;MB} MB VGG-Face file into safetensors {speedup;.1f}× faster than the "
        "original's TensorFlow path, at {memory_ratio;.2f}× its peak memory; identical tensors: "
        "{identical_tensors}.",
        table=lambda d, n: records_table({k: d[k] for k in ("original", "plain_h5py", "s2f")},
                                         ("wall_s", "peak_rss_mb"), n)),
    "parity.json": Finding(
        "Over every architecture and file form, Keras is at most {*|max_rel;.1e} (relative) from the PyTorch "
        "port; the rounding rule's gate passes on all of them.",
        table=lambda d, n: records_table(d, ("arch", "include_top", "max_rel", "min_cosine", "worst_layer",
                                                       "passed"), n)),
    "features.json": Finding(
        "The numpy features match their references within float32 rounding: VE_conv against librosa "
        "{deviation|ve_original_vs_librosa;.1e}, against tf.signal {deviation|ve_paper_vs_tf_signal_stft;.1e}, the "
        "AST fbank against transformers {deviation|ast_fbank_vs_transformers_extractor;.1e}.",
        table=lambda d, n: ["| comparison | max relative deviation |", "|---|---|"]
        + [f"| {k} | {n(v)} |" for k, v in d["deviation"].items()]),
    "learning.json": Finding(
        "On {summary|identities} unseen synthetic identities, speech→face recall@5 is {summary|recall@5;.3f} against "
        "{summary|chance@5;.3f} by chance ({summary|recall@5_over_chance}×); the decoder's L1 is "
        "{summary|decoder_l1;.4f} against the mean face's {summary|mean_face_l1;.4f}; face→face skin ΔE "
        "{summary|colour_delta_e|face_to_face|skin} where the real identities lie "
        "{summary|colour_delta_e|face_to_face|real_spread_skin} from their average.",
        table=lambda d, n: ["| | recall | chance |", "|---|---|---|"]
        + [f"| @{k} | {n(d['summary'][f'recall@{k}'])} | {n(d['summary'][f'chance@{k}'])} |" for k in (1, 5, 10)]),
    "decoder_recipe.json": Finding(
        "The worst texture L1 over the mean face's on five corpus seeds is {summary|warp|worst} with the warping "
        "decoder, {summary|no warp|worst} without it, and {summary|original recipe|worst} with the original's recipe.",
        table=lambda d, n: records_table(d["summary"], ("worst", "beats_0.7_on_every_seed"), n)),
    "decoder_seeds.json": Finding(
        "At the demo's budget on corpus seeds {seeds}, the worst seed's decoder L1 is "
        "{variants|demo|distribution|decoder L1 / mean face|worst}× the mean face's (before the colour fix "
        "{variants|before|distribution|decoder L1 / mean face|worst}×), face→face recall@5 "
        "{variants|demo|distribution|face->face R@5 / chance|worst}× chance "
        "({variants|before|distribution|face->face R@5 / chance|worst}×), speech→face "
        "{variants|demo|distribution|speech->face R@5 / chance|worst}× "
        "({variants|before|distribution|speech->face R@5 / chance|worst}×) and face→face skin ΔE "
        "{variants|demo|distribution|face->face skin ΔE|worst} "
        "({variants|before|distribution|face->face skin ΔE|worst}), where the real identities' skin lies "
        "{variants|demo|distribution|real skin spread ΔE|median} from their average.",
        table=_seed_spread),
    "train_throughput.json": Finding(
        "On this CPU a training step of the full VE_conv takes {models|ve_conv full|step_s;.1f} s (batch 2): "
        "real training belongs on a GPU, where it runs at the rates beside it; the trainer costs "
        "{models|trainer_overhead|ratio}× a bare loop.", table=_training_side_by_side),
    "gpu_check.json": Finding(
        "On one {gpu}, bf16 autocast trains the face decoder {training|face_decoder (VGG-Face embedding loss)|"
        "amp_speedup}×, VE_conv {training|ve_conv (fc8 distillation + decoder layer)|amp_speedup}× and the AST "
        "{training|ast (fc8 distillation + decoder layer)|amp_speedup}× faster than float32, every loss finite.",
        table=lambda d, n: records_table(d["training"], ("batch", "fp32|samples_per_s", "amp_bf16|samples_per_s",
                                                         "amp_speedup"), n)),
    "onnx_runtime_vnni.json": Finding(
        "speech→face at batch 1: the runtime's best engine ({pipeline|speech->face batch 1|best|runtime}) runs "
        "{pipeline|speech->face batch 1|best|runtime_over_torch}× as fast as PyTorch's best mode "
        "({pipeline|speech->face batch 1|best|torch}); at batch 8, "
        "{pipeline|speech->face batch 8|best|runtime_over_torch}×.",
        table=lambda d, n: _engine_table(d)),
    "onnx_runtime_avx2.json": Finding(
        "speech→face at batch 1 on an AVX2 CPU: the runtime's best engine runs "
        "{pipeline|speech->face batch 1|best|runtime_over_torch}× as fast as PyTorch's best mode."),
    "int8_kernels.json": Finding(
        "Int8 AST graphs (the tiny models) keep cosine {native|cosine|tiny|ast/u8u8;.4f} (U8U8) here and "
        "{emulated_avx2|cosine|ast/u8u8;.4f} on an emulated AVX2 CPU, where onnxruntime's default U8S8 drops to "
        "{emulated_avx2|cosine|ast/u8s8;.4f} (bar {bar}): export writes U8U8.", table=_int8_side_by_side),
    "ingest.json": Finding(
        "Ingesting VoxCeleb1 and 2 ({projection_voxceleb1_2|clips;,} clips) projects to "
        "{projection_voxceleb1_2|ingest_minutes} min and a listing of {projection_voxceleb1_2|listing_seconds} s "
        "on this machine.",
        table=lambda d, n: records_table(d["runs"], ("clips", "ingest_s", "ingest_us_per_clip", "ingest_peak_mb",
                                                     "ingest_vs_cp_al", "listing_vs_rglob"), n)),
    "data_scale.json": Finding(
        "From 1k to 100k clips the listing, the index and a rerun grow linearly in time and stay within "
        "{scale|listing|100000|peak_rss_mb} MB; for VoxCeleb2 ({projection_voxceleb2|clips;,} clips), precomputed "
        "features take {projection_voxceleb2|disk_tb|precomputed ve_conv} TB (VE_conv) where training on the fly "
        "reads {projection_voxceleb2|on_the_fly_read_mb_per_s_per_gpu (m4a)} MB/s of m4a per GPU.",
        table=_data_scale_table),
    "on_the_fly.json": Finding(
        "With features computed on the training device, VE_conv reaches recall@5 "
        "{results|ve_conv|on-the-fly|recall@5_over_chance}× chance against "
        "{results|ve_conv|precomputed|recall@5_over_chance}× precomputed (and "
        "{results|ve_conv|precomputed, seed 1|recall@5_over_chance}× with another seed): the same learning, within "
        "seed noise.",
        table=lambda d, n: records_table(d["results"]["ve_conv"], ("recall@5", "recall@5_over_chance",
                                                                   "sf2f_speech_to_face|recall@5", "final_val_loss"),
                                         n)),
    "signing.json": Finding(
        "Signing the {bundle_mb} MB bundle takes {sign_s} s; checking the signature adds "
        "{cli_to_png_hash_cache|added_s} s to an `s2f-runtime speech2face` run, and our check with the hash cache "
        "runs {model_signing_full_check|speedup}× as fast as model_signing's full one.",
        table=lambda d, n: records_table({k: v for k, v in d.items() if isinstance(v, dict) and "added_s" in v},
                                         ("unsigned|process_s", "signed|process_s", "added_s", "ratio"), n)),
    "engine_startup.json": Finding(
        "Opening the full bundle takes {starts|onnxruntime fp32|median_s} s on onnxruntime, "
        "{starts|openvino fp32|median_s} s on OpenVINO, and {starts|auto|median_s} s with `--backend auto`, which "
        "times every candidate on the probe.",
        table=lambda d, n: records_table(d["starts"], ("median_s", "empty_cache_s", "over_onnxruntime"), n)),
    "install_size.json": Finding(
        "The torch-free runtime installs in {extras|runtime|site_packages_mb} MB, {extras|runtime|of_train;.2f}× "
        "the training install's {extras|train|site_packages_mb} MB.",
        table=lambda d, n: records_table(d["extras"], ("site_packages_mb", "install_s", "has_torch"), n)),
    "int8_recall.json": Finding(
        "Over three seeds int8 graphs change recall@5 by at most {largest_int8_change}, within the run-to-run noise "
        "of {run_to_run_noise_std;.3f}.",
        table=lambda d, n: records_table(d["seeds"], (), n)),
    "decoder_profile.json": Finding(
        "At batch {batch}, the full decoder spends {kernel_ms} ms in onnxruntime's kernels, {by_op_ms|Conv} ms of "
        "them in convolutions.",
        table=lambda d, n: ["| operator | ms |", "|---|---|"] + [f"| {k} | {n(v)} |" for k, v in d["by_op_ms"].items()
                                                               if v]),
    "export_rewrites.json": Finding(
        "At batch 8 the export's rewrites run the decoder {face_decoder|speedup_batch8}×, the face encoder "
        "{face_encoder|speedup_batch8}× and the AST {ast|speedup_batch8}× as fast as the plain export.",
        table=lambda d, n: records_table({k: v for k, v in d.items() if k != "machine"},
                                         ("rewrite", "speedup_open_in_place", "speedup_batch1", "speedup_batch8"), n)),
    "end_to_end.json": Finding(
        "The end-to-end graph gives the two-stage path's face to {export|ve_conv|verification_end_to_end|speech2face|"
        "image_levels} levels and runs face→face from a photo {speed|face->face, VGG-Face, 640x480 photo, batch 1|"
        "speedup}× as fast; Node.js gets the same face ({node|ve_conv|deviation|image_levels} levels).",
        table=lambda d, n: records_table(d["speed"], ("two_stage_ms", "end_to_end_ms", "speedup"), n)),
    "original_models.json": Finding(
        "Against the original project's own inference, `s2f-runtime` takes "
        "{encoders|ve_conv|runtime_fp32_one_shot|speedup_per_clip}× less time per clip with VE_conv and starts "
        "{encoders|ve_conv|runtime_fp32_one_shot|speedup_cold_start}× sooner, its face within "
        "{encoders|ve_conv|runtime_fp32_one_shot|agreement|image_max_levels} level.", table=_original_models_table),
    "directory_mode.json": Finding(
        "On {clips} clips of full-size models, directory mode writes {results|full|batched_files_per_s} files/s on "
        "onnxruntime and {results|full|openvino_bf16|files_per_s} on OpenVINO bf16, the PNGs identical batched or "
        "not ({results|full|identical_pngs}).",
        table=lambda d, n: records_table(d["results"], ("one_at_a_time_files_per_s", "batched_files_per_s",
                                                        "openvino_fp32|files_per_s", "openvino_bf16|files_per_s"), n)),
    "serve_load_full.json": Finding(SERVE_SENTENCE, table=lambda d, n: records_table(
        d["results"], ("requests_per_s", "p50_s", "p99_s", "errors", "busy_503", "server_peak_rss_mb"), n)),
    "serve_load_tiny.json": Finding(SERVE_SENTENCE, table=lambda d, n: records_table(
        d["results"], ("requests_per_s", "p50_s", "p99_s", "errors", "busy_503", "server_peak_rss_mb"), n)),
}
