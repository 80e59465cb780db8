# Two commands on a fresh machine: `make run` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vitrecon-installed

.PHONY: run test setup bench screenshot weights clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/vitrecon view

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/vitrecon bench --models vit-s,unet-s,vit-l,unet-m --size 320 --batch 1,8 --reference

# The shipped demo weights end to end (hours on a CPU; resumable: run it again to continue).
WEIGHTS_OUT ?= runs/demo
weights: $(STAMP)
	$(BIN)/python -m trainer recipe demo --out $(WEIGHTS_OUT) --install resources/weights

screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python tools/screenshot.py docs/screenshot.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
