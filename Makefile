# The user's entry point. `make check` and `make demo` work on a fresh Debian 12
# machine as root: they install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build install check unit demo demo-stop faults soak bench clean fsm-diagram deb check-deb check-deb-fresh

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	@if [ -d monitor_ext ]; then $(MAKE) -f Makefile.pgxs -j $(JOBS); fi

install: build
	@if [ -d monitor_ext ]; then $(MAKE) -f Makefile.pgxs install; fi
	cmake --install $(BUILD)

# Every test (unit, regress, isolation, end-to-end) through ctest: one summary line at the end.
check: install
	cd $(BUILD) && status=0; ctest --output-on-failure --timeout 1500 || status=$$?; \
	  echo "simulation (ctest simulation.million_steps; rerun one seed with AUTOFAILOVER_SIM_SEED=<seed>):"; \
	  grep -h '^simulation' Testing/Temporary/LastTest.log | sed 's/^/  /' | tail -n 40; exit $$status

# A monitor and two data nodes on 127.0.0.1 under the unprivileged OS user (scripts/demo.sh).
demo: install
	@bash scripts/demo.sh

demo-stop:
	@bash scripts/demo-stop.sh

# Failure tests on isolated hosts (network namespaces, root): the full matrix, then docs/failure-tests.md.
faults: install
	@bash scripts/faults.sh $(BUILD)

# The seeded nemesis for AUTOFAILOVER_SOAK_ROUNDS (100) rounds in network namespaces (root; ~25 min), then its
# section of docs/failure-tests.md (scripts/soak.sh).
soak: install
	@bash scripts/soak.sh $(BUILD)

# Keeper-protocol benchmark against a temporary monitor (not a test; figures in docs/benchmarks.md).
bench: install
	@bash bench/run_node_active_bench.sh
	@dpkg -s postgresql-15-auto-failover pg-auto-failover-cli >/dev/null 2>&1 || \
	  flock /tmp/autofailover-apt.lock apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli
	@bash bench/run_node_active_sidebyside.sh
	@/usr/bin/python3 bench/sidebyside.py --rounds 2
	@/usr/bin/python3 bench/rejoin.py --runs 10
	@/usr/bin/python3 bench/fault_rows.py --rows P3,N1 --runs 10

# docs/fsm.svg from libautofailover's keeper transition table (`autoctl show fsm --dot`), with
# Graphviz's dot (Debian graphviz, installed here when missing: make check does not need it).
fsm-diagram:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS) --target autoctl
	@command -v dot >/dev/null || flock /tmp/autofailover-apt.lock apt-get install -y --no-install-recommends graphviz
	$(BUILD)/autoctl/autoctl show fsm --dot > docs/fsm.dot
	dot -Tsvg docs/fsm.dot -o docs/fsm.svg
# A Debian package of what `make build` built (scripts/build-deb.sh): $(BUILD)/autofailover_<version>_<arch>.deb.
deb: build
	@bash scripts/build-deb.sh $(BUILD)

# apt-get install of that package, a monitor + 2 nodes from the installed files, then purge (root;
# scripts/check-deb.sh, under the install lock; what make install had installed is put back).
check-deb: deb
	@bash scripts/check-deb.sh $(BUILD)

# The same package on a fresh Debian 12: a new debootstrap root file system, apt-get install inside it (the
# dependencies come from the Debian mirror), monitor + 2 nodes, switchover, rejoin (scripts/check-deb-fresh.sh).
check-deb-fresh: deb
	@bash scripts/check-deb-fresh.sh $(BUILD)

clean:
	rm -rf $(BUILD)
	@if [ -d monitor_ext ]; then $(MAKE) -f Makefile.pgxs clean; fi
