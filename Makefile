# Top-level wrapper around CMake/CTest. The README's two commands:
#   make demo   — build and run a local fleet of agents on 127.0.0.1
#   make test   — the whole test suite: unit, simulation, multi-process,
#                 under AddressSanitizer+UBSan, plus a bounded fuzz run
JOBS ?= $(shell nproc)
CMAKE ?= cmake

.PHONY: all deps build build-asan build-fuzz demo test test-unit test-asan test-fuzz clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

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
	rm -rf build build-asan build-fuzz
