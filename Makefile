# rknb: `make demo` writes the five demo reports into reports/; `make test` runs every CI gate.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rknb-installed

.PHONY: demo test setup clean-reports

setup: $(STAMP)

# Re-install only when pyproject.toml changed (the stamp is newer otherwise).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	$(BIN)/jupyter kernelspec list 2>/dev/null | grep -q '^ *python3 ' || \
		$(BIN)/python -m ipykernel install --sys-prefix --name python3
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rknb demo --output reports

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/gates

clean-reports:
	rm -rf reports
