# sluice: build, test, demo, bench.
#   make            build ./sluice
#   make demo       run the example pipeline on the embedded PostgreSQL
#   make test       unit + end-to-end suite (starts its own PostgreSQL)
#   make bench      benchmarks under tests/bench (figures go to docs/benchmarks.md)
#   make test SANITIZE=address,undefined
#   make test SANITIZE=thread        (the concurrency scripts only: docs/testing.md)
#   make fuzz [FUZZ_SECONDS=30] [FUZZ_TARGETS=cron]   libFuzzer targets (tests/fuzz/)
# demo, test and bench install missing Debian packages first (as root), or
# print the apt-get line to run.

CC ?= cc
PKGS := libpq odbc jansson libxxhash libcurl yaml-0.1 libcrypto zlib libzstd
DEBS := libpq-dev unixodbc-dev odbc-postgresql libjansson-dev libxxhash-dev \
	libcurl4-openssl-dev libyaml-dev postgresql postgresql-client libcmocka-dev \
	pkg-config jq libssl-dev zlib1g-dev libzstd-dev tzdata node=nodejs npm=npm curl=curl chromium \
	docker-compose=docker-compose git=git
SANITIZE ?=
# One build directory per sanitizer set (build/std, build/address-undefined,
# build/thread): their objects cannot be linked together.
comma := ,
BUILD := build/$(if $(SANITIZE),$(subst $(comma),-,$(SANITIZE)),std)

# ThreadSanitizer makes the suite several times slower: under it, unless
# told otherwise, only the end-to-end scripts that exercise threads run
# (worker threads, cancellation, concurrent runs and crashes, the S3 and
# stage helper threads, the S3 lock's heartbeat), plus every unit test.
TSAN_SCRIPTS := t0250-connection-budget.sh t0020-atomicity.sh t0030-failure-isolation.sh t0040-cancel.sh t0080-artifacts.sh \
	t0203-concurrency-and-crash.sh t0215-parallel-target-files.sh t0220-selection-decisions.sh \
	t0230-parallel-swaps.sh t0400-stages.sh t0405-stage-binary.sh \
	t0700-shell-models.sh t0800-s3-state.sh t0930-audit-graph.sh t1010-schedule-retry.sh
ifeq ($(SANITIZE),thread)
SLUICE_TEST_SCRIPTS ?= $(TSAN_SCRIPTS)
export SLUICE_TEST_SCRIPTS
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= -O2 -g
# Every unit, tests included, gets the banned libc calls first (see the header).
BANNED := -include engine/util/banned.h
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(BANNED) $(CFLAGS) $(WARN) $(PKG_CFLAGS) -MMD -MP
LIBS = $(PKG_LIBS) -lpthread -lm
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRC := $(sort $(wildcard engine/util/*.c engine/*.c connectors/*.c))
LIB_SRC := $(filter-out engine/main.c,$(LIB_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/engine/report-page.o $(BUILD)/engine/builtin-macros.o
UTIL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard engine/util/*.c) engine/value.c)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps demo test unit cli bench campaign faults fuzz fuzz-build fuzz-bins clean FORCE

all: sluice

sluice: $(BUILD)/sluice FORCE
	@cmp -s $< $@ || cp $< $@

$(BUILD)/sluice: $(BUILD)/engine/main.o $(BUILD)/libsluice.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libsluice.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Files built into the binary as one C string each, named after the file:
# the report's page (engine/report-page.html: report_page[], for
# engine/report.c) and the dbt namespace's macros
# (engine/builtin-macros.sql: builtin_macros[], for engine/macros.c).
# '?' is escaped so that no trigraph can form.
define embed_file
	@mkdir -p $(dir $@)
	{ echo 'const char $(subst -,_,$(basename $(notdir $<)))[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } >$@
endef
$(BUILD)/engine/report-page.c: engine/report-page.html
	$(embed_file)
$(BUILD)/engine/builtin-macros.c: engine/builtin-macros.sql
	$(embed_file)
$(BUILD)/engine/report-page.o $(BUILD)/engine/builtin-macros.o: %.o: %.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Unit tests link only what they test, so one module's work in progress
# does not block another's tests.
T_TEMPLATE := $(BUILD)/engine/template.o
T_PROJECT := $(BUILD)/engine/yaml.o $(BUILD)/engine/project.o $(BUILD)/engine/json.o $(T_TEMPLATE) \
	$(BUILD)/engine/schedule.o $(BUILD)/engine/cron.o $(BUILD)/engine/dialect.o $(BUILD)/engine/dialect-postgres.o \
	$(BUILD)/engine/dialect-redshift.o
T_DAG := $(BUILD)/engine/dag.o
# registry.c names every driver and object store, so whatever links it
# links them all.
T_CONNECTORS := $(BUILD)/connectors/registry.o $(BUILD)/connectors/postgres.o $(BUILD)/connectors/pg-embedded.o \
	$(BUILD)/connectors/odbc.o $(BUILD)/connectors/s3.o $(BUILD)/connectors/file.o
T_POSTGRES := $(T_CONNECTORS)
$(BUILD)/tests/test_postgres: $(T_POSTGRES)
$(BUILD)/tests/test_odbc: $(T_POSTGRES)
T_DIALECT := $(BUILD)/engine/dialect.o $(BUILD)/engine/dialect-postgres.o $(BUILD)/engine/dialect-redshift.o
T_S3 := $(T_CONNECTORS)
T_STATE := $(BUILD)/engine/state.o $(BUILD)/engine/state-local.o $(BUILD)/engine/state-warehouse.o \
	$(BUILD)/engine/state-s3.o $(BUILD)/engine/json.o $(T_DIALECT) $(T_POSTGRES) $(T_S3)
$(BUILD)/tests/test_state: $(T_STATE)
$(BUILD)/tests/test_state_s3: $(T_STATE)
$(BUILD)/tests/test_redshift: $(T_STATE) $(BUILD)/engine/materialize.o $(BUILD)/engine/conn.o $(BUILD)/engine/audit.o $(BUILD)/engine/ui.o $(T_PROJECT)
$(BUILD)/tests/test_s3: $(T_S3)
T_SHELL := $(BUILD)/engine/shell.o $(BUILD)/engine/fileset.o $(BUILD)/engine/fingerprint.o $(BUILD)/engine/json.o
$(BUILD)/tests/test_shell: $(T_SHELL)
$(BUILD)/tests/test_template: $(T_TEMPLATE)
$(BUILD)/tests/test_yaml: $(T_PROJECT)
$(BUILD)/tests/test_project: $(T_PROJECT)
$(BUILD)/tests/test_dag: $(T_DAG)
$(BUILD)/tests/test_cron: $(BUILD)/engine/cron.o
$(BUILD)/tests/test_retry: $(BUILD)/engine/retry.o
$(BUILD)/tests/test_semver: $(BUILD)/engine/semver.o
$(BUILD)/tests/test_pgcopy: $(BUILD)/engine/pgcopy.o
$(BUILD)/tests/test_json: $(BUILD)/engine/json.o
# The executor test refuses threads through a wrapped pthread_create.
$(BUILD)/tests/test_executor: $(T_DAG) $(BUILD)/engine/executor.o
$(BUILD)/tests/test_executor: LDFLAGS += -Wl,--wrap=pthread_create
T_DATATEST := $(T_PROJECT) $(T_DAG) $(T_SHELL) $(BUILD)/engine/datatest.o $(BUILD)/engine/manifest.o \
	$(BUILD)/engine/macros.o $(BUILD)/engine/context.o $(BUILD)/engine/builtin-macros.o $(T_DIALECT) $(T_CONNECTORS)
$(BUILD)/tests/test_datatest: $(T_DATATEST)
$(BUILD)/tests/test_trace: $(T_DAG) $(BUILD)/engine/blame.o $(BUILD)/engine/graph.o $(BUILD)/engine/identity.o \
	$(BUILD)/engine/audit.o $(BUILD)/engine/ui.o $(T_CONNECTORS)
$(BUILD)/tests/test_seed: $(BUILD)/engine/seed.o $(T_DIALECT)
$(BUILD)/tests/%: tests/unit/%.c $(UTIL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(LIBS) -lcmocka

deps:
	@sh tests/harness/deps.sh $(DEBS)

demo: deps
	@$(MAKE) --no-print-directory sluice
	@sh tests/harness/demo.sh

test: deps
	@$(MAKE) --no-print-directory sluice $(UNIT_BIN) $(REPLAY_BIN)
	@BUILD=$(BUILD) sh tests/harness/run-tests.sh $(UNIT_BIN) $(REPLAY_BIN)

# Fuzzing (tests/fuzz/, docs/testing.md). Each fuzz_<target>.c is built
# twice: with libFuzzer, ASan and UBSan by clang into $(FUZZ_DIR)/fuzz/
# (make fuzz-build), and with replay.c by the ordinary build, as a TAP test of
# make test that replays the seed corpus and the regression inputs.
FUZZ_ALL := template yaml project state artifacts csv s3_xml cron packages
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 30
FUZZ_SAN := fuzzer-no-link,address,undefined
FUZZ_DIR := build/$(subst $(comma),-,$(FUZZ_SAN))
FUZZ_HELP := tests/fuzz/fuzz.c
REPLAY_BIN := $(FUZZ_ALL:%=$(BUILD)/fuzz/replay_%)
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HELP) $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DFUZZ_TARGET='"$*"' $(LDFLAGS) -o $@ $(filter %.c %.a,$^) $(LIBS)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HELP) $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.a,$^) $(LIBS)
fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
# clang warns of vsnprintf's format in the printf-like helpers, which gcc
# (the ordinary build) checks at their callers instead.
fuzz-build: deps
	@sh tests/harness/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory CC=clang SANITIZE=$(FUZZ_SAN) \
		WARN="$(WARN) -Wno-format-nonliteral" fuzz-bins
# Each target in turn (one process: the machine is shared) for
# FUZZ_SECONDS, from its seed corpus; what it grows stays under
# $(FUZZ_DIR)/run/<target>/ (never committed). A crash, a leak or an
# input slower than 1 s stops it with the input saved there, and make
# fails.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		d=$(FUZZ_DIR)/run/$$t && mkdir -p $$d/corpus $$d/crashes && \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s" && \
		nice -n 19 $(FUZZ_DIR)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=1 \
			-rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 -artifact_prefix=$$d/crashes/ \
			$$d/corpus tests/fuzz/corpus/$$t >$$d/log 2>&1; rc=$$?; \
		grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^SUMMARY|Test unit written' $$d/log; \
		[ $$rc = 0 ] || { echo "fuzz_$$t failed: $$d/log"; exit 1; }; \
	done

# The randomized differential test of skipping, long: make campaign
# ROUNDS=1000 SEED=7 [CONNECTORS="libpq odbc"] (docs/testing.md).
ROUNDS ?= 200
SEED ?= $(shell date +%s)
CONNECTORS ?= libpq
campaign: deps
	@$(MAKE) --no-print-directory sluice
	@SLUICE_TEST_SCRIPTS=t0900-differential.sh SLUICE_TEST_CONNECTORS="$(CONNECTORS)" \
		SLUICE_DIFF_ROUNDS=$(ROUNDS) SLUICE_DIFF_SEED=$(SEED) PROVE_JOBS=-v BUILD=$(BUILD) \
		sh tests/harness/run-tests.sh

# The reliability campaigns (docs/testing.md): the load scenario and the
# fault campaign, long: make faults TRIALS=200 SEED=7.
TRIALS ?= 9
faults: deps
	@$(MAKE) --no-print-directory sluice
	@SLUICE_TEST_SUITE=tests/faults SLUICE_TEST_CONNECTORS="$(CONNECTORS)" PROVE_JOBS=-v BUILD=$(BUILD) \
		SLUICE_FAULT_TRIALS=$(TRIALS) SLUICE_FAULT_SEED=$(SEED) \
		sh tests/harness/run-tests.sh

bench: deps
	@sh tests/harness/deps.sh time
	@$(MAKE) --no-print-directory sluice $(BUILD)/bench/load-csv
	@BUILD=$(BUILD) sh tests/bench/run.sh

# tests/bench/odbc.sh loads CSV through each connector with this.
$(BUILD)/bench/load-csv: tests/bench/load-csv.c $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

clean:
	rm -rf build sluice target .sluice/pg.log

-include $(shell find build -name '*.d' 2>/dev/null)
