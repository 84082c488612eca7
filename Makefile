# The two commands a new user runs (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# the torch-free serving environment: only the 'serve' extra (the runtime's numpy, onnxruntime, PIL,
# audio readers, plus Starlette and uvicorn)
RUNTIME_VENV ?= .venv-runtime

.PHONY: setup demo serve test test-fast test-avx2 lint wheel bench report clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of torch from local disk first, so the extras resolve without a download
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

$(RUNTIME_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install --quiet '.[serve]'
	touch $@

setup: $(VENV)/.installed

demo: setup $(RUNTIME_VENV)/.installed
	$(VENV)/bin/s2f demo --workdir s2f-demo --runtime-env $(RUNTIME_VENV)

serve: $(RUNTIME_VENV)/.installed
	$(RUNTIME_VENV)/bin/s2f-runtime serve --bundle s2f-demo/training/bundle --port 8000

test: setup
	$(PY) -m pytest -q

# the unit tests: no model exports, servers, processes or corpora (a few minutes on 2 cores)
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# the tests whose outcome depends on the CPU's vector instructions (pytest -m isa), again on an
# emulated AMD EPYC Rome: AVX2 and FMA, no AVX-512, no VNNI (qemu-user; its AVX2 is orders of
# magnitude slower than native float32, each FMA a software call, so these tests use micro models)
AVX2_CPU = $(shell $(PYTHON) bench/machine.py --emulated-avx2-cpu)
test-avx2: setup
	@command -v qemu-x86_64 >/dev/null || { echo "make test-avx2 needs qemu-user: apt-get install qemu-user"; exit 2; }
	S2F_EXPECT_CPU=avx2 OMP_NUM_THREADS=1 qemu-x86_64 -cpu $(AVX2_CPU) $(PY) -m pytest -q -m isa -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .

# the wheel, built as pip builds it; any warning of the build backend fails it
wheel: setup
	rm -rf build/wheel && mkdir -p build && $(PY) -m pip wheel --no-deps -v -w build/wheel . > build/wheel.log 2>&1 \
		|| { tail -20 build/wheel.log; exit 1; }
	! grep -E "[A-Za-z]+Warning:" build/wheel.log

# every figure in the README, rewritten into bench/results/ (an hour or more on 2 cores; the
# page picture uses the bundle make demo trained; bench/gpu_check.sh runs on a GPU machine)
bench: setup demo
	$(PY) bench/convert_speed.py
	$(PY) bench/parity_all.py
	$(PY) bench/features.py
	$(PY) bench/learning.py
	$(PY) bench/decoder_recipe.py
	$(PY) bench/train_throughput.py
	$(PY) bench/onnx_runtime.py
	$(PY) bench/int8_recall.py
	$(PY) bench/int8_kernels.py
	$(PY) bench/decoder_profile.py
	$(PY) bench/export_rewrites.py
	$(PY) bench/end_to_end.py
	$(PY) bench/original_models.py
	$(PY) bench/directory_mode.py
	$(PY) bench/serve_load.py --size full --seconds 20
	$(PY) bench/serve_load.py --size tiny --seconds 15
	$(PY) bench/serve_page.py --demo s2f-demo
	$(PY) bench/report.py

# bench/README.md and the README's headline figures, from bench/results/
report:
	$(PYTHON) bench/report.py

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) s2f-demo
