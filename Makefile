# SPDX-License-Identifier: MIT
# floodgate build. Read top to bottom; see docs/STYLE.md section 2.9.
#
#   make                 release build (hardened): build/release/floodgate
#   make run             install missing Debian packages, build, start on ./data
#   make check           every test: lint, ASan+UBSan unit + integration (on LMDB, then again
#                        on Redis), fuzz corpus replay, the concurrent integration tests
#                        again under TSan
#   make BUILD=debug|asan|tsan|coverage|release|fuzz
#   make coverage        line and branch coverage of src/ by the tests (needs gcovr)
#   make BUILD=asan unit | integ | integ-redis | fuzz-replay   one test layer (BUILD=tsan
#                        integ-tsan); make fuzz | lint | format | bench

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
BUILD ?= release
# V=1 shows full compiler command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif
CC ?= cc
ifeq ($(BUILD),fuzz)
CC := clang
endif

PKGS := libuv inih jansson libsodium lmdb libargon2 libcrypt libcrypto libcurl hiredis
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread -lm

WARN := -std=c17 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wvla -Wundef -Wwrite-strings -Wpointer-arith -Wimplicit-fallthrough -Wcast-qual -Werror
BASE := -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) -MMD -MP

ifeq ($(BUILD),release)
OPT := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
LDOPT := -pie -Wl,-z,relro,-z,now
else ifeq ($(BUILD),debug)
OPT := -O0 -g3 -DFG_TESTING
LDOPT :=
else ifeq ($(BUILD),asan)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1 -g $(SAN) -DFG_TESTING
LDOPT := $(SAN)
else ifeq ($(BUILD),tsan)
SAN := -fsanitize=thread -fno-omit-frame-pointer
OPT := -O1 -g $(SAN) -DFG_TESTING
LDOPT := $(SAN)
else ifeq ($(BUILD),coverage)
OPT := -O0 -g --coverage -fprofile-update=atomic -DFG_TESTING
LDOPT := --coverage
else ifeq ($(BUILD),fuzz)
SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1 -g $(SAN) -DFG_TESTING -DFG_FUZZING
LDOPT := -fsanitize=fuzzer,address,undefined
else
$(error BUILD must be release, debug, asan, tsan, coverage or fuzz)
endif

# The tests need the hooks FG_TESTING compiles in; the release build leaves them out.
TEST_GOALS := unit integ integ-redis integ-tsan fuzz-replay
ifeq ($(BUILD),release)
ifneq ($(filter $(TEST_GOALS),$(MAKECMDGOALS)),)
$(error the tests run on a build with their hooks: make BUILD=asan $(filter $(TEST_GOALS),$(MAKECMDGOALS)) (integ-tsan: BUILD=tsan); make check runs every layer)
endif
endif

CFLAGS_ALL := $(WARN) $(BASE) $(OPT) $(CFLAGS)
LDFLAGS_ALL := $(LDOPT) $(LDFLAGS)
OUT := build/$(BUILD)

# Everything but main.c goes into a library that tests and fuzzers link against.
LIB_SRC := $(filter-out src/main.c,$(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(OUT)/%.o)
LIB := $(OUT)/libfloodgate.a
BIN := $(OUT)/floodgate

UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
HARNESS_OBJ := $(OUT)/tests/harness.o $(OUT)/tests/fixture.o
.SECONDARY: $(HARNESS_OBJ)

FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))

.PHONY: all run check unit integ integ-redis integ-tsan fuzz-replay fuzz lint format bench deps clean docs coverage deb package openapi
all: $(BIN)

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# The rehearsal's HTML report template becomes a C string (no tool beyond sed needed).
$(OUT)/gen/rh_report_html.h: src/rehearse/rh_report.html
	@mkdir -p $(dir $@)
	$(Q){ echo 'static const char report_template[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/"&\\n"/' $<; echo ';'; } > $@
$(OUT)/src/rehearse/rh_report.o: $(OUT)/gen/rh_report_html.h
$(OUT)/src/rehearse/rh_report.o: CFLAGS_ALL += -I$(OUT)/gen

# The admin console's page, script and stylesheet, and the OpenAPI description the admin
# listener serves, become C strings the same way.
$(OUT)/gen/web_console.h: src/web/console.html src/web/console.js src/web/console.css \
                          docs/openapi.json
	@mkdir -p $(dir $@)
	$(Q){ for f in $^; do n=$$(basename $$f | tr . _); echo "static const char $$n[] ="; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/"&\\n"/' $$f; echo ';'; done; } > $@
$(OUT)/src/web/web_console.o: $(OUT)/gen/web_console.h
$(OUT)/src/web/web_console.o: CFLAGS_ALL += -I$(OUT)/gen

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(OUT)/src/main.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

# ---- first run ---------------------------------------------------------------------------
deps:
	@scripts/install-deps

# make run LISTEN=127.0.0.1:9090 DATA=/tmp/fg: another address or data directory
LISTEN ?= 127.0.0.1:8080
DATA ?= ./data
run: deps
	@$(MAKE) --no-print-directory BUILD=release
	@mkdir -p $(DATA)
	build/release/floodgate --listen $(LISTEN) --data-dir $(DATA)

# ---- tests -------------------------------------------------------------------------------
$(OUT)/tests/%.o: tests/unit/%.c tests/unit/%.h $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit -c $< -o $@

$(OUT)/tests/%: tests/unit/%.c $(HARNESS_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $< $(HARNESS_OBJ) $(LIB) -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

RESULTS := $(OUT)/results
unit: $(UNIT_BIN)
	@mkdir -p $(RESULTS)
	@tests/run-unit $(UNIT_BIN) | tee $(RESULTS)/unit.txt

integ: $(BIN)
	@mkdir -p $(RESULTS)
	@FLOODGATE_BIN=$(abspath $(BIN)) tests/run-integ 2>&1 | tee $(RESULTS)/integ.txt; \
	  grep -q ' 0 failed' $(RESULTS)/integ.txt

# The same integration tests with every server and CLI call on Redis instead of LMDB (a
# redis-server the tests start): the whole product on the other store.
integ-redis: $(BIN)
	@mkdir -p $(RESULTS)
	@FLOODGATE_BIN=$(abspath $(BIN)) FG_TEST_STORE=redis INTEG_NAME=integration-redis \
	  tests/run-integ 2>&1 | tee $(RESULTS)/integ-redis.txt; \
	  grep -q ' 0 failed' $(RESULTS)/integ-redis.txt

# The threads that share state (event queues and sinks, lockout and rate tables, the
# policy, the rehearsal against the server) under ThreadSanitizer: make BUILD=tsan integ-tsan
TSAN_TESTS := test_events test_lockout test_rehearse test_oauth test_scaleout \
              test_console.ConsoleTest test_console.ConsoleFleetTest
integ-tsan: $(BIN)
	@mkdir -p $(RESULTS)
	@FLOODGATE_BIN=$(abspath $(BIN)) INTEG_NAME=integration-tsan TSAN_OPTIONS=halt_on_error=0 \
	  tests/run-integ $(TSAN_TESTS) 2>&1 | tee $(RESULTS)/integ-tsan.txt; \
	  grep -q ' 0 failed' $(RESULTS)/integ-tsan.txt

# Replays every fuzz corpus through the targets, built with a plain main() (gcc, sanitizers).
FUZZ_REPLAY_BIN := $(FUZZ_TARGETS:%=$(OUT)/fuzz/replay_%)
$(OUT)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay_main.c $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< fuzz/replay_main.c $(LIB) -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

fuzz-replay: $(FUZZ_REPLAY_BIN)
	@mkdir -p $(RESULTS)
	@: > $(RESULTS)/fuzz-replay.txt
	@for t in $(FUZZ_TARGETS); do \
	  $(OUT)/fuzz/replay_$$t fuzz/corpus/$$t | tee -a $(RESULTS)/fuzz-replay.txt || exit 1; \
	done

# libFuzzer: make BUILD=fuzz fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
FUZZ_BIN := $(FUZZ_TARGETS:%=$(OUT)/fuzz/fuzz_%)
$(OUT)/fuzz/fuzz_%: fuzz/fuzz_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< $(LIB) -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

fuzz: $(FUZZ_BIN)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/out/$$t; \
	  $(OUT)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -dict=fuzz/$$t.dict \
	    fuzz/out/$$t fuzz/corpus/$$t || exit 1; \
	done

# The README's test command. asan is the build that tests run on.
check: deps
	@$(MAKE) --no-print-directory lint
	@rm -rf build/asan/results
	@$(MAKE) --no-print-directory BUILD=asan unit
	@$(MAKE) --no-print-directory BUILD=asan integ
	@$(MAKE) --no-print-directory BUILD=asan integ-redis
	@$(MAKE) --no-print-directory BUILD=asan fuzz-replay
	@rm -rf build/tsan/results
	@$(MAKE) --no-print-directory BUILD=tsan integ-tsan
	@$(MAKE) --no-print-directory BUILD=release
	@$(MAKE) --no-print-directory package
	@tests/sum-results build/asan/results/unit.txt build/asan/results/integ.txt \
	  build/asan/results/integ-redis.txt build/asan/results/fuzz-replay.txt \
	  build/tsan/results/integ-tsan.txt build/deb/package.txt

# Line and branch coverage of src/ by the unit and integration tests (both stores) and the
# fuzz corpora replayed (part of make check), with
# gcc's gcov and Debian's gcovr: a per-folder summary, and build/coverage/coverage.txt.
coverage: deps
	@command -v gcovr >/dev/null || { echo "coverage: needs gcovr (apt-get install gcovr)"; exit 1; }
	@find build/coverage -name '*.gcda' -delete 2>/dev/null || true
	@rm -rf build/coverage/results
	@$(MAKE) --no-print-directory BUILD=coverage unit
	@$(MAKE) --no-print-directory BUILD=coverage integ
	@$(MAKE) --no-print-directory BUILD=coverage integ-redis
	@$(MAKE) --no-print-directory BUILD=coverage fuzz-replay >/dev/null
	@gcovr --root . --filter 'src/' --object-directory build/coverage --branches \
	  --sort-percentage -o build/coverage/coverage.txt build/coverage
	@tools/coverage-summary build/coverage

lint:
	@tools/lint

# docs/openapi.json made again from docs/openapi.yaml (make check checks they agree)
openapi:
	@test -d tools/openapi/node_modules || npm ci --prefix tools/openapi --no-audit --no-fund
	node tools/openapi/check.mjs --write

format:
	clang-format -i $(wildcard src/*.c src/*/*.c src/*/*.h tests/unit/*.[ch] tests/unit/*/*.c fuzz/*.c)

docs: $(BIN)
	tools/gen-docs $(BIN)

bench: deps
	@$(MAKE) --no-print-directory BUILD=release all bench-tools
	bench/http_bench.py
	bench/tokens.py --rounds 5 --record docs/benchmarks.md
	bench/flow_prof.py --flame docs/flamegraphs
	bench/login_prof.py
	bench/refresh_faults.py --rounds 5
	bench/refresh_faults.py --rounds 3 --redis
	bench/instructions.sh
	bench/redis_instructions.sh
	build/release/bench/store_size $$(mktemp -d) 1000000
	d=$$(mktemp -d /var/tmp/fg-rotate-XXXXXX) && build/release/bench/rotate_raw $$d 20000 7 1000000; \
	  rc=$$?; rm -rf $$d; exit $$rc
	bench/rotate_prof.sh 100000 && bench/rotate_prof.sh 10000000
	for n in 1000000 10000000; do d=$$(mktemp -d /var/tmp/fg-rotate-XXXXXX) && \
	  build/release/bench/rotate_raw $$d 400000 7 $$n 160 overlay=200000; \
	  rc=$$?; rm -rf $$d; [ $$rc = 0 ] || exit $$rc; done
	for n in 100000 10000000; do d=$$(mktemp -d /var/tmp/fg-rotate-XXXXXX) && \
	  taskset -c 0 build/release/bench/rotate_raw $$d 2400000 30 $$n 160 runs=200000,10; \
	  rc=$$?; rm -rf $$d; [ $$rc = 0 ] || exit $$rc; done
	bench/growth.py --rounds 3 --sample 500000 --record docs/benchmarks.md
	bench/growth.py --users '' --sizes 100000,10000000 --kinds any --sample 5000000 \
	  --duration 240 --record docs/benchmarks.md
	bench/growth.py --users '' --sizes 100000,10000000 --kinds any --sample 9000000 \
	  --duration 840 --record docs/benchmarks.md
	bench/memory.py
	bench/events.py --rounds 4
	bench/launch.py --html build/release/rehearsal-launch.html
	bench/scaleout.py
	bench/cluster.py
	bench/capacity.py
	bench/console.py
	bench/conns.py --record docs/benchmarks.md

# The Debian package (debian/): build/deb/floodgate_VERSION_ARCH.deb, checked by lintian.
# (debian/rules directly: dpkg-buildpackage would also write .changes and .buildinfo files
# beside the checkout). `make package` also installs it on this machine (root only), starts
# the installed service binary and purges it again (tests/integration/test_package.py).
deb:
	@rm -rf build/deb && mkdir -p build/deb
	dpkg-checkbuilddeps
	debian/rules clean
	debian/rules binary
	lintian --fail-on error build/deb/floodgate_*.deb

package: deb
	@FLOODGATE_DEB=$(abspath $(wildcard build/deb/floodgate_*.deb)) tests/run-integ test_package \
	  2>&1 | tee build/deb/package.txt; grep -q ' 0 failed' build/deb/package.txt

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(OUT)/src/main.d

# ---- benchmark helpers -------------------------------------------------------------------
$(OUT)/bench/argon2_raw: bench/argon2_raw.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

$(OUT)/bench/crypto_raw: bench/crypto_raw.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

$(OUT)/bench/store_size: bench/store_size.c bench/seed.h $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< $(LIB) -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

$(OUT)/bench/rotate_raw: bench/rotate_raw.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

$(OUT)/bench/seed_refresh: bench/seed_refresh.c bench/seed.h $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< $(LIB) -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

$(OUT)/bench/seed_users: bench/seed_users.c bench/seed.h $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $< $(LIB) -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

bench-tools: $(OUT)/bench/argon2_raw $(OUT)/bench/crypto_raw $(OUT)/bench/store_size $(OUT)/bench/rotate_raw \
	$(OUT)/bench/seed_refresh $(OUT)/bench/seed_users
