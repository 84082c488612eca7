"""Open each graph of a pipeline on the engine asked for, or (``auto``) on the fastest one that
keeps the bundle's promise on this machine.

The rule for every precision but float32 (what export verified) is the bundle's probe
(``s2f.runtime.engines.probe``): an explicit choice that misses its gate is refused with one line;
``auto`` skips it with one warning and times the rest on the probe itself, so "fastest"
is measured here, on this CPU, at open, not assumed from another machine's benchmark. Bundles
from before probes run float32 only, unless ``unverified`` (``--unverified``) takes the risk,
which the log marks on every open.
"""

from __future__ import annotations

import logging

from s2f.core.errors import InputError
from s2f.runtime.engines.backends import Engine, backend_available, has_bf16, open_session
from s2f.runtime.engines.options import RunOptions
from s2f.runtime.engines.probe import Probe, load_probe

log = logging.getLogger(__name__)
REFERENCE = Engine("onnxruntime", "fp32")


def open_graph(bundle, role: str, options: RunOptions, chosen: dict[str, str], probe: Probe | None | bool = True):
    """A session for ``role``'s graph; records what runs it in ``chosen`` (role -> "openvino bf16
    (embedding cosine ...)")."""
    if probe is True:
        probe = load_probe(bundle)
    if options.backend == "auto":
        return _fastest(bundle, role, options, chosen, probe)
    engine = Engine(options.backend, options.precision or "fp32")
    session = _open(bundle, role, engine, options)
    if engine.precision == "fp32":  # float32 keeps the export's promise on either engine
        chosen[role] = str(engine)
        return session
    if probe is not None and probe.has(role):
        result = probe.check(session, role, runs=1, precision=engine.precision)
        if not result.passed:
            raise InputError(session.graph_path, f"{engine} misses the bundle's gate on this machine ({result}); "
                                                 "run it with --precision fp32")
        chosen[role] = f"{engine} ({result})"
        return session
    if engine.exported_as_is:
        chosen[role] = str(engine)
        return session
    if not options.unverified:
        raise _no_probe(bundle, engine)
    log.warning("warning: %s runs %s UNVERIFIED (no probe in this bundle; --unverified)", role, engine)
    chosen[role] = f"{engine} (unverified)"
    return session


def _no_probe(bundle, engine: Engine) -> InputError:
    return InputError(bundle.root, f"this bundle has no probe (exported before probes), so {engine} cannot be "
                                   "checked on this machine: run fp32, export the bundle again, or pass --unverified")


def _open(bundle, role: str, engine: Engine, options: RunOptions):
    (path,) = bundle.require(role, precision=engine.graph_precision)
    entry = bundle.manifest.files[path.name]
    names = {"inputs": list(entry.inputs or {}), "outputs": list(entry.outputs or [])}
    digests = [entry.sha256] + [bundle.manifest.files[w].sha256 for w in entry.weight_files]
    return open_session(path, engine, options.device, options.threads, options.prepack, names, digests)


def candidates(bundle, role: str, options: RunOptions) -> list[Engine]:
    """What ``auto`` may pick for ``role``: onnxruntime on the GPU where one starts; on the CPU
    onnxruntime and (installed) OpenVINO, at every precision this bundle and CPU allow."""
    from s2f.runtime.engines.onnxruntime import gpu_available

    wanted = [options.precision] if options.precision else ["fp32", "bf16", "int8"]
    if options.device != "cpu" and gpu_available():
        return [Engine("onnxruntime", p) for p in wanted if p != "bf16" and bundle.has(role, p)]
    engines = [Engine("onnxruntime", p) for p in wanted if p != "bf16"]
    if backend_available("openvino"):
        engines += [Engine("openvino", p) for p in wanted if p != "bf16" or has_bf16()]
    return [engine for engine in engines if bundle.has(role, engine.graph_precision)]


def _fastest(bundle, role: str, options: RunOptions, chosen: dict[str, str], probe: Probe | None):
    engines = candidates(bundle, role, options)
    if not engines:
        raise InputError(bundle.root, f"--backend auto: nothing here runs the {role.replace('_', ' ')} at "
                                      f"{options.precision or 'any precision'}")
    if probe is None or not probe.has(role):
        engine = REFERENCE if REFERENCE in engines else engines[0]
        if engine != REFERENCE and not options.unverified:
            raise _no_probe(bundle, engine)
        log.info("%s: %s (no probe in this bundle: auto keeps float32 onnxruntime)", role, engine)
        chosen[role] = f"{engine} (no probe)"
        return _open(bundle, role, engine, options)
    timed = []
    for engine in engines:
        session = _open(bundle, role, engine, options)
        result = probe.check(session, role, precision=engine.precision)
        if not result.passed:
            log.warning("warning: %s: auto skips %s, it misses the bundle's gate here (%s)", role, engine, result)
            continue
        timed.append((result.seconds, engine, session, result))
    if not timed:
        raise InputError(bundle.root, f"--backend auto: no engine passes the bundle's gate for the "
                                      f"{role.replace('_', ' ')} on this machine")
    seconds, engine, session, result = min(timed, key=lambda item: item[0])
    others = ", ".join(f"{e} {s * 1000:.1f} ms" for s, e, _, _ in timed if e != engine)
    log.debug("%s: %s (%s; probe %.1f ms%s)", role, engine, result, seconds * 1000,
              f"; {others}" if others else "")
    chosen[role] = f"{engine} ({result}; probe {seconds * 1000:.1f} ms)"
    return session


def describe(chosen: dict[str, str]) -> str:
    return "; ".join(f"{role}: {what}" for role, what in chosen.items())

