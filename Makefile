# EchoSclero — the two commands a newcomer needs:
#   make demo   run a simulated ultrasound-guided injection; writes out/demo/ (MP4 + PNG contact sheet)
#   make test   lint and run the test suite
# Both create the virtual environment (.venv) from the lock file (uv.lock) on first use.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: demo test test-fast lint bench bench-peers train-unet train-lumen clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo    simulated guided injection -> out/demo/ (MP4, contact sheet PNG, DICOM, truth.json)"
	@echo "make test    ruff + the full test suite"
	@echo "make bench   speed and accuracy benchmarks -> docs/benchmarks.md"
	@echo "make train-unet   re-train the U-Net peer (separate venv with CPU torch) -> benchmarks/peers/unet_lumen.onnx"
	@echo "make train-lumen  re-train the engine's lumen network (REAL=path/to/usgra-dev) -> src/echosclero/guidance/models/"
	@echo "make bench-peers  U-Net (onnxruntime) and FAST peers vs the engine -> docs/benchmarks-peers.md"

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

demo: $(VENV)/.synced
	$(VENV)/bin/echosclero demo --out out/demo

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check src tests benchmarks

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

test-fast: $(VENV)/.synced
	$(VENV)/bin/pytest -n 2 -q -m "not slow"

bench: $(VENV)/.synced
	$(VENV)/bin/python -m benchmarks $(BENCH)

# The U-Net peer's training needs PyTorch, kept out of the project's environment (run time needs onnxruntime only).
TRAIN_VENV := .venv-train

$(TRAIN_VENV)/.ok:
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --quiet torch==2.13.0 onnx numpy opencv-python-headless scipy pillow
	@touch $@

train-unet: $(TRAIN_VENV)/.ok
	PYTHONPATH=src:. nice -n 10 $(TRAIN_VENV)/bin/python -m benchmarks.peers.train_unet $(TRAIN)

# The engine's lumen network (src/echosclero/guidance/models/lumen_net.onnx): same training venv; REAL is the
# usgra-seg development folder (images/, masks/). The data cache (out/lumen_cache.npz) is built on first use.
REAL ?= ../shared/data/real/usgra-dev
train-lumen: $(TRAIN_VENV)/.ok
	PYTHONPATH=src:. nice -n 10 $(TRAIN_VENV)/bin/python scripts/train_lumen_net.py --real $(REAL) --threads 1 $(TRAIN)

# FAST (pyfast, group "peers") also needs Debian's libusb-1.0-0 and pocl-opencl-icd (apt-get install).
bench-peers: $(VENV)/.synced
	$(UV) sync --frozen --python $(PYTHON) --group peers
	$(VENV)/bin/python -m benchmarks.bench_peers $(BENCH)

clean:
	rm -rf out .pytest_cache
