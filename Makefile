# The two commands of the README:
#   make run    set up, then run procsight on embedded defaults (receiver + local agent)
#   make test   set up, then run the test suite
.PHONY: setup run test lint bench

setup:
	bash scripts/setup.sh

# `procsight run` prints the page's address, then a status line every few seconds.
run: setup
	.venv/bin/procsight run

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .

# Benchmarks print numbers and ratios against reference runs in the same process (agent.py needs root).
bench: setup
	.venv/bin/python bench/detect.py
	.venv/bin/python bench/scoring.py
	.venv/bin/python bench/receiver.py
	.venv/bin/python bench/agent.py
	.venv/bin/python bench/fleet.py
	.venv/bin/python bench/search.py
