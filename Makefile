# The two entry points of the README: `make demo` and `make test`. Both create
# .venv on first use and are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_CAPTURE := captures/softioc_pyepics_basic.pcap

.PHONY: demo test bench bench-read bench-storm clean

$(PY):
	$(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing python3-venv" >&2; \
	  (apt-get update -qq; apt-get install -y -qq python3-venv) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/shark read $(DEMO_CAPTURE)
	$(VENV)/bin/shark stats $(DEMO_CAPTURE)

test: $(VENV)/.installed-test
	@./tests/install-tools.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: $(VENV)/.installed-test
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/decode_rate.py
	$(PY) benchmarks/table_rate.py

# Flags for read_rate.py, e.g. BENCH_ARGS="--runs 3 --cut 25" for a quicker look.
BENCH_ARGS ?=

# A 160 MB capture from real peers (softioc + 3 monitoring clients; needs root for the
# private namespace), then shark's rates and memory beside tshark + ca.lua (when found),
# caproto-shark and dpkt, and the messages table beside the from_records baseline.
bench-read: $(VENV)/.installed-test
	$(PY) -m pip install --quiet -e '.[bench]'
	test -f benchmarks/data/big_monitors.pcap || $(PY) benchmarks/make_big_capture.py
	$(PY) benchmarks/read_rate.py $(BENCH_ARGS)

# A storm from real peers (softioc with 3000 scalars at 10 Hz, 4 monitoring clients, one
# more creating and clearing 200 channels a second; needs root), then issue 15's speed
# table on it: the same rates, 5 runs each (median, min, max), and its targets.
bench-storm: $(VENV)/.installed-test
	$(PY) -m pip install --quiet -e '.[bench]'
	test -f benchmarks/data/storm.pcap || $(PY) benchmarks/make_storm_capture.py
	$(PY) benchmarks/read_rate.py benchmarks/data/storm.pcap --no-baseline $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
