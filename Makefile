# Top-level wrapper around CMake/CTest. The README's two commands:
#   make demo   — build and run a local fleet of agents on 127.0.0.1
#   make test   — the whole test suite: unit, simulation, multi-process,
#                 under AddressSanitizer+UBSan, plus a bounded fuzz run
JOBS ?= $(shell nproc)
CMAKE ?= cmake

.PHONY: all deps build build-pgo build-asan build-fuzz demo test test-unit test-asan test-fuzz clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

# The optimised build again, guided by a profile of the simulator (for
# bench/sim.sh): an instrumented build runs three short simulations (about
# 10 s), then the same directory is rebuilt with their profile.
build-pgo: deps
	@$(CMAKE) -S . -B build-pgo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_PGO=generate >/dev/null
	@$(CMAKE) --build build-pgo -j $(JOBS) --target shoal
	@find build-pgo -name '*.gcda' -delete
	@echo "build-pgo: training run"
	@./build-pgo/shoal sim --nodes 2000 --seconds 100 --seed 2 --scenario crash --warm >/dev/null
	@./build-pgo/shoal sim --nodes 300 --seconds 60 --seed 2 --scenario loss >/dev/null
	@./build-pgo/shoal sim --nodes 300 --seed 2 --scenario churn >/dev/null
	@$(CMAKE) -S . -B build-pgo -DSHOAL_PGO=use >/dev/null
	@$(CMAKE) --build build-pgo -j $(JOBS) --target shoal

build-asan: deps
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSHOAL_SANITIZE=ON >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)

build-fuzz: deps
	@CC=clang $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_FUZZ=ON >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS)

demo: build
	@./build/shoal demo

# Unit tests on the optimised build, then everything under ASan+UBSan, then
# each fuzz target for a bounded time.
test: build build-asan build-fuzz
	@cd build && ctest --output-on-failure -L unit -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -LE fuzz -j $(JOBS)
	@cd build-fuzz && ctest --output-on-failure -L fuzz

clean:
	rm -rf build build-pgo build-asan build-fuzz
