# The two commands of the README, and the steps they are made of.
#   make demo   install what is missing, build, prepare Fashion-MNIST as HDF5, train on 2 ranks
#   make test   install what is missing, build, run every test
BUILD ?= build
JOBS ?= $(shell nproc)
DATA ?= datasets/fashion-mnist.h5
CONFIG ?= configs/fashion-mnist.yaml
NP ?= 2
DEMO_STEPS ?= 400
RUN_DIR ?= runs/fashion-mnist
DISTGAN = $(BUILD)/launcher/distgan
# Open MPI refuses to start as root unless told; harmless otherwise.
MPIRUN = OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np $(NP) --bind-to core

.PHONY: all deps configure build demo test test-unit bench clean

all: build

# Slurm and munge too (the job-script tests start a one-machine Slurm), clang's libFuzzer (the
# fuzz tests) and Chromium (the run report's headless-browser test).
deps:
	bash cluster/install-deps.sh --with-slurm --with-fuzz --with-browser

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD) -j $(JOBS)

$(DATA): | build
	mkdir -p $(dir $(DATA))
	$(DISTGAN) prep fashion-mnist --out $(DATA)

# A few minutes of DCGAN training on 2 ranks bound to cores; rank 0 prints where the results are.
# Each demo is a new run: the previous demo's run directory is removed first (a new run refuses a
# directory that already holds checkpoints; see --resume in docs/training-and-checkpoints.md).
demo: build $(DATA)
	$(DISTGAN) inspect $(DATA)
	rm -rf $(RUN_DIR)
	$(MPIRUN) $(DISTGAN) train --config $(CONFIG) --set training.steps=$(DEMO_STEPS) \
	  --set logging.sample_every=100 --set logging.run_dir=$(RUN_DIR)
	@echo "sample grids: $(RUN_DIR)/samples/*.png   metrics: $(RUN_DIR)/metrics.jsonl   model: $(RUN_DIR)/final.h5   checkpoints: $(RUN_DIR)/checkpoints"

test: build
	cd $(BUILD) && ctest --output-on-failure --no-tests=error -j 2

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j 2

bench: build
	bash bench/loader.sh $(BUILD)

clean:
	rm -rf $(BUILD)
