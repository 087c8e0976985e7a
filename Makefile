# Two commands for a fresh clone:  `make demo` (set up, run the main job)  and  `make test` (set up, run the tests).
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.kp3d-setup

.PHONY: setup install demo test bench clean

setup: $(STAMP)

# The project itself (not editable, so share/kp3d_ros and the ament index marker land under the venv prefix);
# re-run every time so the installed `kp3d` and `multicam_node` match the source tree.
install: setup
	@rm -rf build  # setuptools never deletes from build/: a module removed from the tree would still be installed
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation . \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }

$(STAMP): requirements.txt requirements-ros.txt setup.py scripts/setup_env.sh
	PYTHON=$(PYTHON) bash scripts/setup_env.sh $(VENV)
	touch $(STAMP)

demo: install
	$(VENV)/bin/kp3d demo

test: install
	$(VENV)/bin/python -m pytest -q test

bench: install
	$(VENV)/bin/kp3d bench triangulation

clean:
	rm -rf out build *.egg-info .pytest_cache
