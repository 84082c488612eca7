"""Render the benchmark pages from ``bench/results/*.json``: every figure this project quotes,
next to the command that measured it, so no figure can drift from its measurement.

``bench/README.md`` is the front page: which machine measured what, side by side, then per
bench one finding (a sentence whose numbers come from the results, ``bench/findings.py``), the
one table it rests on, and links to its results file and to its section of
``bench/details.md``. The details page lays every results file out whole: the script's own
docstring as what it measures, a table per group of like records, rows in the file's order.
Nothing here is typed by hand but the section order, titles and finding templates.

The README's headline table (between its ``headlines`` markers) is rendered the same way.

usage: python bench/report.py            # rewrite bench/README.md, bench/details.md and the README's headlines
       python bench/report.py --check    # exit 1 if any is not what the results give
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # findings.py beside this file
RESULTS = BENCH / "results"
OUTPUT = BENCH / "README.md"
DETAILS = BENCH / "details.md"
MAX_ROWS = 40  # longer lists (learning curves) show their first and last rows

# (results file, script, how to run it, title); the order of the page
SECTIONS = [
    ("convert_speed.json", "convert_speed.py", "python bench/convert_speed.py", "Converting Keras files"),
    ("parity.json", "parity_all.py", "python bench/parity_all.py", "Parity with the Keras originals"),
    ("features.json", "features.py", "python bench/features.py", "Voice features"),
    ("learning.json", "learning.py", "python bench/learning.py", "Learning on the synthetic corpus"),
    ("decoder_recipe.json", "decoder_recipe.py", "python bench/decoder_recipe.py", "The decoder's recipe and warp"),
    ("decoder_seeds.json", "decoder_seeds.py", "python bench/decoder_seeds.py --workdir DIR",
     "The decoder over many corpus seeds, colour included"),
    ("train_throughput.json", "train_throughput.py", "python bench/train_throughput.py", "Training throughput"),
    ("gpu_check.json", "gpu_check.py", "bench/gpu_check.sh", "On a GPU"),
    ("onnx_runtime_vnni.json", "onnx_runtime.py", "python bench/onnx_runtime.py",
     "The runtime's engines against PyTorch's modes, CPUs with VNNI"),
    ("onnx_runtime_avx2.json", "onnx_runtime.py", "python bench/onnx_runtime.py",
     "The runtime's engines against PyTorch's modes, AVX2 CPUs"),
    ("int8_kernels.json", "int8_kernels.py", "python bench/int8_kernels.py", "Int8 on every x86 CPU"),
    ("ingest.json", "ingest.py", "python bench/ingest.py", "VoxCeleb at full size: ingest, listing, preprocessing"),
    ("data_scale.json", "data_scale.py", "python bench/data_scale.py",
     "The training data path as the corpus grows: precomputed against on the fly"),
    ("on_the_fly.json", "on_the_fly.py", "python bench/on_the_fly.py", "Learning with features on the fly"),
    ("signing.json", "signing.py", "python bench/signing.py", "Signed bundles"),
    ("engine_startup.json", "engine_startup.py", "python bench/engine_startup.py", "Start-up of each engine"),
    ("install_size.json", "install_size.py", "python bench/install_size.py", "Install size of each extra"),
    ("int8_recall.json", "int8_recall.py", "python bench/int8_recall.py", "Int8 and retrieval"),
    ("decoder_profile.json", "decoder_profile.py", "python bench/decoder_profile.py", "The decoder in onnxruntime"),
    ("export_rewrites.json", "export_rewrites.py", "python bench/export_rewrites.py", "Export rewrites"),
    ("end_to_end.json", "end_to_end.py", "python bench/end_to_end.py", "End-to-end graphs"),
    ("original_models.json", "original_models.py", "python bench/original_models.py",
     "The original project's models"),
    ("directory_mode.json", "directory_mode.py", "python bench/directory_mode.py", "Directory mode"),
    ("serve_load_full.json", "serve_load.py", "python bench/serve_load.py --size full --seconds 20",
     "Serving, full-size models"),
    ("serve_load_tiny.json", "serve_load.py", "python bench/serve_load.py --size tiny --seconds 15",
     "Serving, tiny models"),
]
# The README's headline figures: (what, results file, keys into it, unit); values come from the file
HEADLINES = [
    ("`s2f convert` against the original's TensorFlow way", "convert_speed.json", ("speedup",), "× faster"),
    ("`s2f convert` peak memory against the original's", "convert_speed.json", ("memory_ratio",), "×"),
    ("parity with Keras, worst relative error over every architecture", "parity.json", ("*", "max_rel"), "max"),
    ("speech→face recall@5 on unseen synthetic identities, over chance", "learning.json",
     ("summary", "recall@5_over_chance"), "×"),
    ("decoder L1 on unseen faces, against the mean face's", "learning.json",
     ("summary", "decoder_l1_over_mean_face"), "×"),
    ("SF2F face→face recall@5 from the bundle (one gallery of 37)", "learning.json",
     ("summary", "sf2f_bundle", "face_to_face", "recall@5"), ""),
    ("onnxruntime against PyTorch eager, face encoder, batch 1", "onnx_runtime_vnni.json",
     ("latency", "face_encoder batch 1", "onnxruntime_speedup"), "×"),
    ("speech→face, the runtime's best engine against PyTorch's best mode (bf16, compile), batch 1",
     "onnx_runtime_vnni.json", ("pipeline", "speech->face batch 1", "best", "runtime_over_torch"), "×"),
    ("speech→face, the runtime's best engine against PyTorch's best mode (bf16, compile), batch 8",
     "onnx_runtime_vnni.json", ("pipeline", "speech->face batch 8", "best", "runtime_over_torch"), "×"),
    ("int8 AST (U8U8, exact on every x86 CPU) against its float32 graph, VNNI CPU, batch 1", "int8_kernels.json",
     ("speed_up_over_fp32", "ast/batch1", "u8u8"), "×"),
    ("int8 AST cosine to float64 on an emulated AVX2 CPU, U8U8 (bar 0.999)", "int8_kernels.json",
     ("emulated_avx2", "cosine", "ast/u8u8"), ""),
    ("the same with onnxruntime's default signed weights (U8S8, saturating)", "int8_kernels.json",
     ("emulated_avx2", "cosine", "ast/u8s8"), ""),
    ("`s2f-runtime` per clip against the original's inference, VE_conv", "original_models.json",
     ("encoders", "ve_conv", "runtime_fp32_one_shot", "speedup_per_clip"), "×"),
    ("serving throughput, full-size models, 8 clients, batched against unbatched", "serve_load_full.json",
     ("results", "8 clients batched", "speedup_vs_unbatched"), "×"),
    ("serving throughput, full-size models, 8 clients, OpenVINO bf16 against onnxruntime", "serve_load_full.json",
     ("results", "8 clients batched openvino:bf16", "over_onnxruntime"), "×"),
    ("`--trust-key` added to `s2f-runtime speech2face`, full-size bundle, process start to PNG", "signing.json",
     ("cli_to_png_hash_cache", "added_s"), "s"),
]
README = BENCH.parent / "README.md"

PICTURES = {"decoder_recipe.json": sorted((RESULTS / "decoder_recipe").glob("*.png")) if
            (RESULTS / "decoder_recipe").is_dir() else [],
            "decoder_seeds.json": [],  # filled below: each variant's worst seed first
            "serve_load_tiny.json": [RESULTS / "serve_page.png"]}
if (RESULTS / "decoder_seeds.json").is_file():
    _seeds = json.loads((RESULTS / "decoder_seeds.json").read_text())["variants"]
    PICTURES["decoder_seeds.json"] = [RESULTS / "decoder_seeds" / name for rank in range(3)
                                      for variant in ("before", "demo") if variant in _seeds
                                      for name in _seeds[variant]["grids"][rank:rank + 1]]
# how many of a bench's pictures its front-page section shows (one unless named)
FRONT_PICTURES = {"decoder_seeds.json": 2}


def describe(script: str) -> str:
    """The bench script's docstring, up to its usage line."""
    path = BENCH / script
    if not path.is_file():
        return ""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.split("\nusage:")[0].split("\nWrites ")[0].strip()


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3g}"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(number(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


MAX_COLUMNS = 12  # wider groups are shown record by record


def _scalar(value: Any) -> bool:
    """A number, a text, or a list of them: one table cell."""
    if isinstance(value, dict):
        return False
    return not isinstance(value, list) or all(not isinstance(v, dict | list) for v in value)


def _columns(value: dict | list) -> int:
    records = value.values() if isinstance(value, dict) else value
    return len({column for record in records for column in _flat(record)})


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested record as one row: ``{"a": {"b": 1}}`` -> ``{"a b": 1}``."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            row.update(_flat(value, f"{prefix}{key} "))
        elif _scalar(value):
            row[f"{prefix}{key}"] = value
    return row


def _tabular(value: Any) -> bool:
    """Like records (a dict of dicts, or a list of dicts) whose flattened rows are tables of numbers."""
    records = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
    return bool(records) and all(isinstance(r, dict) and r and all(
        _scalar(v) or isinstance(v, dict) and all(_scalar(x) for x in v.values()) for v in r.values())
        for r in records)


def table(rows: dict[str, dict[str, Any]] | list[dict[str, Any]]) -> list[str]:
    """A Markdown table of like records; a dict's keys become the first column."""
    items = list(rows.items()) if isinstance(rows, dict) else [(None, row) for row in rows]
    if len(items) > MAX_ROWS:
        items = items[:5] + [("…", {})] + items[-5:]
    flat = [(key, _flat(row)) for key, row in items]
    columns: list[str] = []
    for _, row in flat:
        columns += [c for c in row if c not in columns]
    keyed = isinstance(rows, dict)
    lines = ["| " + " | ".join(([" "] if keyed else []) + columns) + " |",
             "|" + "---|" * (len(columns) + keyed)]
    for key, row in flat:
        cells = ([number(key)] if keyed else []) + [number(row[c]) if c in row else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _scalar_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(_scalar(v) for v in value.values())


def render_mapping(name: str, data: dict[str, Any], depth: int) -> list[str]:
    """A heading; the mapping's single values as a two-column table; its groups of single
    values as one table (a row per group); then a table or a subsection per deeper group."""
    lines = [f"{'#' * min(depth + 3, 6)} {name}", ""] if name else []
    singles = {k: v for k, v in data.items() if _scalar(v) and k != "machine"}
    if singles:
        lines += ["| | |", "|---|---|"] + [f"| {k} | {number(v)} |" for k, v in singles.items()] + [""]
    groups = {k: v for k, v in data.items() if _scalar_dict(v) and k != "machine"}
    alike: dict[frozenset, dict[str, Any]] = {}
    for key, value in groups.items():  # groups with the same fields share a table
        alike.setdefault(frozenset(value), {})[key] = value
    for members in alike.values():
        if len(members) > 1:
            lines += table(members) + [""]
            continue
        ((key, value),) = members.items()
        lines += [f"**{key}**", "", "| | |", "|---|---|"] + [f"| {k} | {number(v)} |" for k, v in value.items()]
        lines += [""]
    for key, value in data.items():
        if key == "machine" or key in groups or _scalar(value):
            continue
        if _tabular(value) and _columns(value) <= MAX_COLUMNS:
            lines += [f"**{key}**", ""] + table(value) + [""]
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for index, record in enumerate(value):
                first = next(iter(record.items()), ("", index))
                lines += render_mapping(f"{key}: {first[0]} {number(first[1])}", record, depth + 1)
        elif isinstance(value, dict):
            lines += render_mapping(key, value, depth + 1)
        else:  # a list of unlike things
            lines += [f"**{key}**", "", "```", json.dumps(value, indent=1)[:2000], "```", ""]
    return lines


def render_results(data: Any) -> list[str]:
    if isinstance(data, list):
        return table(data) + [""]
    machine = data.get("machine")
    lines = ["Measured on: " + ", ".join(f"{k} {number(v)}" for k, v in machine.items()), ""] if machine else []
    return lines + render_mapping("", data, 0)


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return "".join(c for c in title.lower() if c.isalnum() or c in " -").replace(" ", "-")


def machine_of(data: Any) -> str:
    """Where a results file was measured, in a few words."""
    if isinstance(data, dict) and "gpu" in data and "machine" not in data:
        return f"{data['gpu']} (torch {data.get('torch', '?')})"
    machine = data.get("machine", {}) if isinstance(data, dict) else {}
    if not machine:
        return "(not recorded)"
    features = machine.get("cpu_features", "")
    kind = ("AVX-512, VNNI" + (", AMX" if "amx" in features else "") if "avx512_vnni" in features
            else "AVX2" if "avx2" in features else features or "")
    return f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores" + (f" ({kind})" if kind else "")


def machines_table() -> list[str]:
    """Every bench and the machine that measured it, side by side: compare ratios across rows."""
    lines = ["| bench | measured on |", "|---|---|"]
    for results, _, _, title in SECTIONS:
        path = RESULTS / results
        where = machine_of(json.loads(path.read_text())) if path.is_file() else "not measured yet"
        lines.append(f"| [{title}](#{anchor(title)}) | {where} |")
    return lines


def render_front() -> str:
    """The front page: a finding and its table per bench."""
    from findings import FINDINGS, fill

    lines = ["# Benchmarks", "",
             "Generated by `python bench/report.py` from `bench/results/*.json`; do not edit by hand. One",
             "finding per bench and the table it rests on; every figure of a bench is in",
             "[details.md](details.md). Ratios are measured against the alternative in the same run, on the",
             "machine named below: compare ratios, not times, across machines.", "",
             "## Where each bench ran", ""] + machines_table() + [""]
    for results, _, command, title in SECTIONS:
        path = RESULTS / results
        lines += [f"## {title}", "", f"`{command}` → [`results/{results}`](results/{results}) · "
                  f"[every figure](details.md#{anchor(title)})", ""]
        if not path.is_file():
            lines += ["(not measured yet)", ""]
            continue
        data = json.loads(path.read_text())
        finding = FINDINGS.get(results)
        if finding is None:
            raise SystemExit(f"bench/findings.py has no finding for {results}")
        try:
            lines += [fill(finding.sentence, data, number), ""]
        except KeyError as err:
            raise SystemExit(f"bench/findings.py, {results}: {err.args[0]}") from None
        if finding.table is not None:
            lines += finding.table(data, number) + [""]
        for picture in PICTURES.get(results, [])[:FRONT_PICTURES.get(results, 1)]:
            if picture.is_file():
                lines += [f"![{picture.stem}]({picture.relative_to(BENCH).as_posix()})", ""]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def render() -> str:
    """The details page: every results file whole."""
    lines = ["# Benchmarks: every figure", "",
             "Generated by `python bench/report.py` from `bench/results/*.json`; do not edit by hand. Each",
             "section names the script that measured it: rerun the script, then the report. The findings",
             "are on the [front page](README.md).", ""]
    lines += [f"- [{title}](#{anchor(title)})" for _, _, _, title in SECTIONS] + [""]
    for results, script, command, title in SECTIONS:
        path = RESULTS / results
        lines += [f"## {title}", "", f"`{command}` → `bench/results/{results}`", ""]
        about = describe(script)
        if about:
            lines += [about, ""]
        if not path.is_file():
            lines += ["(not measured yet)", ""]
            continue
        lines += render_results(json.loads(path.read_text()))
        for picture in PICTURES.get(results, []):
            if picture.is_file():
                lines += [f"![{picture.stem}]({picture.relative_to(BENCH).as_posix()})", ""]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def _lookup(data: Any, keys: tuple[str, ...]) -> Any:
    for index, key in enumerate(keys):
        if key == "*":  # every record of a list: the largest of what follows
            return max(_lookup(item, keys[index + 1:]) for item in data)
        data = data[key]
    return data


def headlines() -> str:
    lines = ["| figure | value | measured by |", "|---|---|---|"]
    for what, results, keys, unit in HEADLINES:
        path = RESULTS / results
        try:
            value = _lookup(json.loads(path.read_text()), keys) if path.is_file() else None
        except KeyError:  # e.g. bf16 rows on a CPU without bf16
            value = None
        shown = "not measured" if value is None else (f"{number(value)} ({unit})" if unit == "max"
                                                      else f"{number(value)}{unit}")
        script = next(command for file, _, command, _ in SECTIONS if file == results)
        lines.append(f"| {what} | {shown} | `{script}` |")
    return "\n".join(lines)


ENGINE_COLUMNS = (("torch_bf16", "PyTorch bf16 autocast"), ("torch_compile", "`torch.compile`"),
                  ("torch_compile_bf16", "`torch.compile` + bf16"), ("onnxruntime", "onnxruntime fp32"),
                  ("onnxruntime_int8", "onnxruntime int8"), ("openvino", "OpenVINO fp32"),
                  ("openvino_bf16", "OpenVINO bf16"))


def _engine_cell(row: dict, backend: str) -> str:
    """Speed-up over PyTorch eager float32, the compile time, and where it is not exact, the
    agreement with PyTorch eager (min cosine, or the most levels a face is off)."""
    if backend not in row:
        return "–"
    if "error" in row[backend]:
        return "refused"
    result, notes = row[backend], []
    if "compile_s" in result:
        notes.append(f"compile {result['compile_s']:g} s")
    if "min_cosine" in result and result["min_cosine"] < 0.99999:
        notes.append(f"cos {result['min_cosine']:.5f}")
    if "max_levels" in result:
        notes.append(f"{result['max_levels']} level{'s' * (result['max_levels'] != 1)}")
    speedup = f"{row[backend + '_speedup']}×"
    best = row.get("best", {})
    speedup = f"**{speedup}**" if backend in (best.get("torch"), best.get("runtime")) else speedup
    return speedup + (f" ({', '.join(notes)})" if notes else "")


# the CPU classes bench/onnx_runtime.py keeps one results file each for (s2f.core.cpu.int8_class)
CPU_CLASSES = {"vnni": "CPUs with VNNI (int8 sums in 32 bits)", "avx2": "AVX2 CPUs without AVX-512 or VNNI"}


def engine_table() -> str:
    """For the README, one table per CPU class: speech->face through the whole pipeline, every
    engine and PyTorch mode (each model alone is on the bench page); a class without a results
    file says so."""
    parts = []
    for cpu_class, title in CPU_CLASSES.items():
        path = RESULTS / f"onnx_runtime_{cpu_class}.json"
        parts.append(f"**{title}**: " + ("not measured (no such machine was available; figures for it "
                                         "come from a run of the bench on one)" if not path.is_file() else "")
                     + ("\n\n" + engine_rows(json.loads(path.read_text()), models=False) if path.is_file() else ""))
    return "\n\n".join(parts)


def engine_rows(data: dict, models: bool = True) -> str:
    """The engine table of one results file: the pipeline rows, and with ``models`` each model's."""
    rows = {**(data["latency"] if models else {}), **data["pipeline"]}
    lines = ["| model | batch | " + " | ".join(title for _, title in ENGINE_COLUMNS)
             + " | runtime's best ÷ PyTorch's best |", "|---" * (len(ENGINE_COLUMNS) + 3) + "|"]
    for key, row in rows.items():
        model, batch = key.rsplit(" batch ", 1)
        best = row.get("best", {})
        lines.append(f"| {model.replace('->', '→')} | {batch} | "
                     + " | ".join(_engine_cell(row, backend) for backend, _ in ENGINE_COLUMNS)
                     + f" | {best.get('runtime_over_torch', '–')}× |")
    machine = data["machine"]
    lines.append(f"\n{machine['cpu']}, {data.get('threads', machine['cores'])} threads, CPU features: "
                 f"{machine.get('cpu_features', 'not recorded')}; bold: the fastest of PyTorch's modes and of "
                 "the runtime's engines.")
    return "\n".join(lines)


def install_table() -> str:
    path = RESULTS / "install_size.json"
    if not path.is_file():
        return "not measured"
    extras = json.loads(path.read_text())["extras"]
    lines = ["| extra | site-packages | of `[train]` | torch |", "|---|---|---|---|"]
    for extra, row in extras.items():
        lines.append(f"| `[{extra}]` | {row['site_packages_mb']:g} MB | {row.get('of_train', '–')} | "
                     f"{'yes' if row['has_torch'] else 'no'} |")
    return "\n".join(lines)


def voxceleb_table() -> str:
    """The VoxCeleb how-to's steps at full size: bench/ingest.py's measurements per file,
    projected to VoxCeleb1+2's clips."""
    path = RESULTS / "ingest.json"
    if not path.is_file():
        return "not measured"
    data = json.loads(path.read_text())
    projection, steps, largest = data["projection_voxceleb1_2"], data["preprocessing"], data["runs"][-1]
    clips = f"{projection['clips']:,}"
    lines = [f"| step, for VoxCeleb1+2's {clips} clips | time | disk |", "|---|---|---|",
             f"| `s2f data voxceleb` | {projection['ingest_minutes']:g} min (measured on {largest['clips']:,} "
             f"clips: {largest['ingest_us_per_clip']:g} µs a clip, peak {largest['ingest_peak_mb']:g} MB) | links "
             "only: a directory entry a file |",
             f"| listing the corpus (every command) | {projection['listing_seconds']:g} s | – |"]
    for name, encoder in (("audio_ve_conv", "ve_conv"), ("audio_ast", "ast")):
        row = steps[name]
        lines.append(f"| `s2f preprocess audio --encoder {encoder}` | {row['voxceleb_hours']:g} h "
                     f"({row['s_per_file'] * 1000:g} ms a clip) | {row['voxceleb_tb']:g} TB "
                     f"({row['bytes_per_file'] / 1e6:.2f} MB a clip) |")
    faces = steps["faces"]
    lines.append(f"| `s2f preprocess faces` (VGG-Face, dlib72) | {faces['s_per_1000_faces'] / 60:.1f} min per "
                 f"1,000 faces | {faces['bytes_per_file'] / 1e3:.0f} kB a face |")
    machine = data["machine"]
    lines.append(f"\n{machine['cpu']}, {machine['cores']} cores; `python bench/ingest.py`.")
    return "\n".join(lines)


def training_data_table() -> str:
    """The two ways voice features reach training, projected to VoxCeleb2 from
    bench/data_scale.py, and whether each learns the same (bench/on_the_fly.py)."""
    path = RESULTS / "data_scale.json"
    if not path.is_file():
        return "not measured"
    data = json.loads(path.read_text())
    projection, loader = data["projection_voxceleb2"], data["scale"]["loader"][str(data["sizes"][-1])]
    workers = projection["dataloader_workers_per_gpu"]
    hours = projection["preprocessing_hours_per_core"]
    disk, reads = projection["disk_tb"], projection["precomputed_read_mb_per_s_per_gpu"]

    def rate(name: str) -> str:
        return f"{loader[name]['samples_per_s_per_worker']:.0f}"

    lines = [f"| VoxCeleb2, {projection['clips']:,} clips | precomputed (`s2f preprocess audio`) | "
             "on the fly (`--features on-the-fly`) |", "|---|---|---|",
             f"| feature arrays on disk | {disk['precomputed ve_conv']:g} TB VE_conv, {disk['precomputed ast']:g} TB "
             "AST | none |",
             f"| preprocessing before training | {hours['ve_conv']:g} h VE_conv, {hours['ast']:g} h AST, per core | "
             "none |",
             f"| reads per GPU at its H200 rate | {reads['ve_conv']} MB/s VE_conv, {reads['ast']} MB/s AST, in "
             f"every epoch | {projection['on_the_fly_read_mb_per_s_per_gpu (m4a)']:g} MB/s of m4a (VE_conv) |",
             f"| samples/s per DataLoader worker | {rate('npy (ve_conv, precomputed)')} (from the page cache) | "
             f"VE_conv {rate('m4a, ve_conv 6 s')} m4a, {rate('wav, ve_conv 6 s')} wav; AST "
             f"{rate('m4a, ast 10.26 s')} m4a, {rate('wav, ast 10.26 s')} wav |",
             f"| workers to feed one H200 (VE_conv 238, AST 337 samples/s) | {workers['ve_conv from npy']}, if the "
             "disk keeps up | VE_conv "
             f"{workers['ve_conv from m4a']} (m4a) or {workers['ve_conv from wav']} (wav); AST "
             f"{workers['ast from m4a']} (m4a) or {workers['ast from wav']} (wav) |",
             f"| the training index in memory | {projection['index_mb']:g} MB | the same |",
             "| a window per clip | fixed: the first | the first, or a new one each epoch (`--random-crop`) |"]
    learned = RESULTS / "on_the_fly.json"
    if learned.is_file():
        results = json.loads(learned.read_text())["results"]
        for encoder, label in (("ve_conv", "VE_conv"), ("ast", "AST")):
            if encoder in results:
                row = results[encoder]
                cells = [f"{row[mode]['recall@5_over_chance']:g}x" for mode in
                         ("precomputed", "on-the-fly", "on-the-fly + random crop")]
                spread = f" ({row['precomputed, seed 1']['recall@5_over_chance']:g}x with another seed)" \
                    if "precomputed, seed 1" in row else ""
                same = row["on-the-fly"] == row["on-the-fly + random crop"]
                crop = " (no demo clip is longer than the window: nothing to crop)" if same else ""
                lines.append(f"| {label} recall@5 over chance, demo corpus | {cells[0]}{spread} | {cells[1]}; "
                             f"{cells[2]} with `--random-crop`{crop} |")
    machine = data["machine"]
    lines.append(f"\n{machine['cpu']}, {machine['cores']} cores; `python bench/data_scale.py`, "
                 "`python bench/on_the_fly.py`.")
    return "\n".join(lines)


def decoder_seeds_table() -> str:
    """The demo's models over the corpus seeds (bench/decoder_seeds.py): the worst seed beside
    the median, the recipe before the colour fix beside today's, against the targets."""
    path = RESULTS / "decoder_seeds.json"
    if not path.is_file():
        return "not measured"
    data = json.loads(path.read_text())
    variants = [v for v in ("before", "demo") if v in data["variants"]]
    targets = {"decoder L1 / mean face": "≤ 0.65", "face->face R@5 / chance": "≥ 3",
               "speech->face R@5 / chance": "≥ 2", "face->face skin ΔE / real spread": "≤ 0.5",
               "face->face skin ΔE": "", "face->face hair ΔE": "", "real skin spread ΔE": ""}
    names = {"before": "before (8-channel texture head, 30 + 8 epochs)", "demo": "today's demo"}
    lines = ["| figure | target | " + " | ".join(f"{names[v]}: worst (seed) / median" for v in variants) + " |",
             "|---|---|" + "---|" * len(variants)]
    for figure, target in targets.items():
        cells = [f"{d['worst']:g} ({d['worst_seed']}) / {d['median']:g}" for d in
                 (data["variants"][v]["distribution"][figure] for v in variants)]
        lines.append(f"| {figure} | {target} | " + " | ".join(cells) + " |")
    machine = data["machine"]
    lines.append(f"\n{len(data['seeds'])} corpus seeds; {machine['cpu']}, {machine['cores']} cores; "
                 "`python bench/decoder_seeds.py --workdir DIR --variants demo before`.")
    return "\n".join(lines)


# the README's generated blocks: marker name -> what fills it
BLOCKS = {"headlines": headlines, "engines": engine_table, "install sizes": install_table,
          "voxceleb steps": voxceleb_table, "training data": training_data_table,
          "decoder seeds": decoder_seeds_table}


def readme_with_headlines(text: str) -> str:
    """The README with every generated block (between its markers) regenerated."""
    for name, make in BLOCKS.items():
        start, end = f"<!-- {name}: generated by bench/report.py -->", f"<!-- /{name} -->"
        if start not in text or end not in text:
            raise SystemExit(f"{README}: the {name} markers are missing")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{make()}\n{end}{tail}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if bench/README.md is out of date")
    args = parser.parse_args()
    pages = {OUTPUT: render_front(), DETAILS: render(), README: readme_with_headlines(README.read_text())}
    if args.check:
        stale = [str(path.relative_to(BENCH.parent)) for path, text in pages.items()
                 if not path.is_file() or path.read_text() != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python bench/report.py", file=sys.stderr)
            return 1
        return 0
    for path, text in pages.items():
        path.write_text(text)
    print(f"{OUTPUT} ({pages[OUTPUT].count(chr(10))} lines), {DETAILS} ({pages[DETAILS].count(chr(10))} lines) "
          "and the README's generated blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
