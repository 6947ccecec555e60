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
EXPERIMENTS := vanishing init batchnorm cnn modern_cnn optimizers regularization
# the audit of the notes reads the other experiments' results, so it comes last (exp-all runs in order)
EXPERIMENTS += claims_audit
# The papers behind the notes, each at its own setup (experiments/<author><year>.py); their presets are
# cpu (make exp-papers: all six in under 20 minutes on 2 cores) and quick (make test).
PAPERS := glorot2010 he2015 ioffe2015 kingma2015 srivastava2014 sutskever2013
PAPER_PRESET = $(if $(filter command line environment,$(origin PRESET)),$(PRESET),cpu)
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: setup setup-ray data data-fashion bench test test-full tensorboard report exp-all exp-papers clean

setup: $(STAMP) data

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The optional Ray extra (--executor ray); make test installs it so the Ray test runs.
setup-ray: $(RAY_STAMP) data

$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $@

data: $(STAMP)
	@$(PY) -m repro data --dataset mnist

# Fashion-MNIST: the second dataset of make exp-generalise and its tests (from Debian's package offline).
data-fashion: $(STAMP)
	@$(PY) -m repro data --dataset fashion-mnist

# Any experiments/<name>.py: make exp-<name> (a pattern rule, so a new experiment needs no edit here);
# a paper runs its cpu preset unless PRESET is given.
exp-%: setup
	$(PY) -m repro run $* $(if $(filter $*,$(PAPERS)),$(subst --preset $(PRESET),--preset $(PAPER_PRESET),$(RUN_ARGS)),$(RUN_ARGS))

# Every paper at its cpu preset (PRESET=quick for a fast look), one at a time, then the report's "Papers".
exp-papers: setup
	@failed=""; for e in $(PAPERS); do \
		echo "== $$e ($(PAPER_PRESET))"; \
		$(PY) -m repro run $$e $(subst --preset $(PRESET),--preset $(PAPER_PRESET),$(RUN_ARGS)) || failed="$$failed $$e"; \
	done; \
	$(PY) -m repro report; \
	if [ -n "$$failed" ]; then echo "make exp-papers: failed:$$failed" >&2; exit 1; fi

# make exp-claims-audit: first the audited experiments that have no results at this PRESET yet, then
# the audit, which prints every statement of the notes with its evidence and verdict.
AUDITED := vanishing init batchnorm optimizers regularization
.PHONY: exp-claims-audit
exp-claims-audit: setup
	@for e in $(AUDITED); do \
		[ -f results/$$e/$(PRESET).json ] || $(PY) -m repro run $$e $(RUN_ARGS) || \
			echo "make exp-claims-audit: $$e failed; its statements stay 'not run yet'" >&2; \
	done
	$(PY) -m repro run claims_audit $(RUN_ARGS)

# Every experiment's phenomenon claims under other setups (Fashion-MNIST, widths x2, batch size
# halved and doubled, fresh seeds), then the report. PRESET is quick unless given (the CNNs' full
# presets take hours here); CONDITIONS=fashion-mnist,widths-x2 picks some, ONLY=vanishing,init some experiments.
GEN_PRESET = $(if $(filter command line environment,$(origin PRESET)),$(PRESET),quick)
.PHONY: exp-generalise
exp-generalise: setup data-fashion
	$(PY) -m repro generalise --preset $(GEN_PRESET) --device $(DEVICE) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(CONDITIONS),--conditions $(CONDITIONS)) $(if $(ONLY),--experiments $(ONLY)); \
	status=$$?; $(PY) -m repro report --preset $(GEN_PRESET); exit $$status

.PHONY: exp-modern-cnn
exp-modern-cnn: exp-modern_cnn  # the module name has an underscore; both spellings work

# Every experiment's preset (full unless PRESET says otherwise), one at a time, then the report.
# An experiment that crashes does not stop the others; make still fails at the end, naming it.
exp-all: setup
	@failed=""; for e in $(EXPERIMENTS); do \
		echo "== $$e ($(PRESET))"; \
		$(PY) -m repro run $$e $(RUN_ARGS) || failed="$$failed $$e"; \
	done; \
	$(PY) -m repro report --preset $(PRESET); \
	if [ -n "$$failed" ]; then echo "make exp-all: failed:$$failed" >&2; exit 1; fi

# reports/REPORT.md from the results on disk (never trains): each experiment's newest results,
# or the preset named with PRESET=...
report: $(STAMP)
	$(PY) -m repro report $(if $(filter command line environment,$(origin PRESET)),--preset $(PRESET))

# Where the time goes, measured side by side in one run (writes results/bench.json); needs an idle machine.
bench: setup
	$(PY) -m repro bench

# The suite on one CUDA GPU in one command (repro/devicecheck.py), run from the repository root of a plain
# checkout with the GPU machine's own python3 (no venv, no network): make device-check CARRY=.carry
# writes device-check.json to $(OUT) where that is set (else results/) and prints a table. DEVICE=cpu is
# its dry run here: make device-check CARRY=.carry DEVICE=cpu PYTHON=.venv/bin/python
CARRY ?= .carry
CHECK_DEVICE = $(if $(filter command line environment,$(origin DEVICE)),$(DEVICE),cuda)
CHECK_OUT ?= $(if $(OUT),$(OUT),results)
BUDGET ?= 360
.PHONY: device-check device-carry
device-check:
	$(PYTHON) -m repro.devicecheck --carry $(CARRY) --device $(CHECK_DEVICE) --out $(CHECK_OUT) --budget $(BUDGET)

# What make device-check takes from CARRY, prepared here (git-ignored; about 11 MB of MNIST and a 35 MB
# scipy wheel): MNIST's four files gzipped as the original distribution ships them, and scipy for the
# GPU machine's CPython 3.12 on x86-64, used only if its python3 lacks scipy.
MNIST_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
SCIPY_WHEEL ?= scipy==1.17.1
device-carry: data
	mkdir -p $(CARRY)/MNIST/raw
	@src=$$($(PY) -c 'from repro.data import raw_dir; print(raw_dir("mnist"))'); for f in $(MNIST_FILES); do \
		if [ -f $$src/$$f.gz ]; then cp $$src/$$f.gz $(CARRY)/MNIST/raw/; else gzip -9 -c $$src/$$f > $(CARRY)/MNIST/raw/$$f.gz; fi; \
	done
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d $(CARRY) '$(SCIPY_WHEEL)'
	@du -sh $(CARRY)

test: setup $(RAY_STAMP) data-fashion
	$(PY) -m pytest -q

test-full: setup
	$(PY) -m pytest -q -m slow

# Local only: binds 127.0.0.1, never all interfaces. TB_PORT=6007 if 6006 is taken; TB_LOGDIR=runs/optimizers
# serves one experiment. TensorBoard itself, started by repro.tb: every address it prints (and the bare one,
# redirected) opens on each experiment's story (Custom Scalars, the mean runs selected).
TB_PORT ?= 6006
TB_LOGDIR ?= runs
tensorboard: setup
	@$(PY) -m repro.tb $(TB_LOGDIR) --port $(TB_PORT)

clean:
	rm -rf runs results reports .pytest_cache
