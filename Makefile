# Thin wrapper over CMake. `make demo` and `make check` are the README's quick start.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build demo check sanitize fuzz lint valgrind clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)

check: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DFE_SANITIZE=ON -DFE_WERROR=ON >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS)

# The multi-process daemon tests with ferryd under valgrind memcheck.
valgrind: build
	@./scripts/valgrind-tests.sh $(BUILD)

lint: deps
	@./scripts/lint.sh

# libFuzzer targets (clang): replay each seed corpus, then a bounded run of
# each target. FUZZ_SECONDS=N runs every target for N seconds instead.
FUZZ_SECONDS ?=
fuzz: deps
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DFE_FUZZ=ON -DFE_WERROR=ON >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS)
ifeq ($(FUZZ_SECONDS),)
	@cd $(BUILD)-fuzz && ctest --output-on-failure -L fuzz
else
	@./scripts/fuzz-for.sh $(BUILD)-fuzz $(FUZZ_SECONDS)
endif

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
