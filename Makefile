# Two commands on a fresh machine (Python 3.10+, no ROS, no GPU needed):
#   make demo   set up .venv with pinned dependencies, then run `anomaly_seg demo`
#   make test   set up .venv if needed, then lint and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ARGS ?=

.PHONY: demo test setup clean-venv

demo: $(STAMP)
	$(BIN)/anomaly_seg demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/ruff check anomaly_seg_ros test launch setup.py
	$(BIN)/python -m pytest -q

setup: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tools.txt requirements/dev.txt requirements/ros.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/runtime.txt -r requirements/tools.txt -r requirements/dev.txt
	@# ROS 2 wheels only where no ROS installation is sourced.
	$(BIN)/python -c "import rclpy" 2>/dev/null || $(BIN)/python -m pip install --quiet -r requirements/ros.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
