# dl-repro: `make exp-optimizers` to see a phenomenon, `make test` to check them all.
# Options pass through to the CLI: make exp-vanishing PRESET=quick SEEDS=2 DEVICE=cuda
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= full
DEVICE ?= auto
SEEDS ?=
SET ?=
RUN_ARGS := --preset $(PRESET) --device $(DEVICE) $(if $(SEEDS),--seeds $(SEEDS)) $(foreach s,$(SET),--set $(s))
EXPERIMENTS := vanishing
STAMP := $(VENV)/.installed

.PHONY: setup data test test-full tensorboard clean $(addprefix exp-,$(EXPERIMENTS))

setup: $(STAMP) data

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

data: $(STAMP)
	@$(PY) -m repro data --dataset mnist

$(addprefix exp-,$(EXPERIMENTS)): exp-%: setup
	$(PY) -m repro run $* $(RUN_ARGS)

test: setup
	$(PY) -m pytest -q

test-full: setup
	$(PY) -m pytest -q -m slow

tensorboard: setup
	@echo "TensorBoard at http://127.0.0.1:6006/ (Ctrl-C to stop)"
	$(VENV)/bin/tensorboard --logdir runs --host 127.0.0.1 --port 6006

clean:
	rm -rf runs results reports .pytest_cache
