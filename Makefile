# ckpt — one entry point for building, testing and installing.
#
#   make demo      install missing packages, build, run the examples
#   make test      install missing packages, build, run the whole test suite
#   make check     the test suite rebuilt under AddressSanitizer + UndefinedBehaviorSanitizer
#   make layers    the runtime's layering rules (scripts/check-layers; part of test and check)
#   make check-exports  libckpt.so exports its public API (CKPT_API) and nothing else
#   make bench     benchmarks (ratios against limits measured in the same run)
#   make torture   SIGKILL async manager saves at random moments, both commit modes, and check
#                  what is left (TORTURE_TRIALS per mode, default 200; TORTURE_SEED; not in test)
#   make fuzz      libFuzzer on every reader (clang), FUZZ_SECONDS (default 20) per target;
#                  not part of `make test`, which replays the corpora and past crashes instead
#   make golden    regenerate the golden generated-code fixtures
#   make install   PREFIX=/usr/local: ckptgen, ckpt, headers, libckpt.{a,so}, ckpt.pc, helpers
#   make clean
#
# Variables: CC (gcc or clang), BUILD (output directory), SAN=1 (sanitizers), PREFIX,
# TORTURE_TRIALS and TORTURE_SEED (make torture).
# FUZZ_SECONDS and FUZZ_ARGS (make fuzz).

CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
PYTHON   ?= /usr/bin/python3
SAN      ?=
FUZZ     ?=

ifeq ($(origin CC),default)
CC := cc
endif

CSTD     := -std=c11
WARN     := -Wall -Wextra -Wpedantic -Werror
OPT      ?= -O2 -g
ifneq ($(SAN),)
OPT      := -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
endif
# FUZZ=1 (set by `make fuzz`, with CC=clang): everything is also instrumented for libFuzzer's
# coverage feedback; only the fuzz targets link libFuzzer itself (-fsanitize=fuzzer).
ifneq ($(FUZZ),)
OPT      := -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all
endif

PKGS     := libcjson libprotobuf-c libzstd liburing libisal blosc zlib msgpack
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcjson -lprotobuf-c -lzstd -luring -lisal -lblosc -lz -lmsgpackc)

CPPFLAGS_ALL := -D_GNU_SOURCE -Iruntime/include -I$(BUILD)/gen $(PKG_CFLAGS)
CFLAGS_ALL   := $(CSTD) $(WARN) $(OPT) $(SANFLAGS) -fPIC -MMD -MP
LDFLAGS_ALL  := $(SANFLAGS)
LDLIBS_ALL   := $(PKG_LIBS) -lpthread -lm

CKPTGEN      := $(BUILD)/bin/ckptgen
CKPT_TOOL    := $(BUILD)/bin/ckpt
LIBCKPT_A    := $(BUILD)/lib/libckpt.a
LIBCKPT_SO   := $(BUILD)/lib/libckpt.so

.DEFAULT_GOAL := all
.PHONY: all deps demo test check bench golden install clean run-tests examples layers \
        check-exports torture fuzz fuzz-run

# ---------------------------------------------------------------- generator (ckptgen)
GEN_SRCS   := $(wildcard generator/*.c)
GEN_OBJS   := $(GEN_SRCS:%.c=$(BUILD)/obj/%.o)
GEN_LEXER  := $(BUILD)/generator/lexer.c
GEN_PARSER := $(BUILD)/generator/parser.c
GEN_PARSER_H := $(BUILD)/generator/parser.h
GEN_FLEXBISON_OBJS := $(BUILD)/obj/generator/lexer.o $(BUILD)/obj/generator/parser.o
GEN_CPPFLAGS := -D_GNU_SOURCE -Igenerator -I$(BUILD)/generator -Iruntime/include \
                -DCKPTGEN_DATADIR='"$(PREFIX)/share/ckpt/schemas"'

$(GEN_PARSER) $(GEN_PARSER_H) &: generator/parser.y
	@mkdir -p $(dir $@)
	bison -Wall -Werror --defines=$(GEN_PARSER_H) -o $(GEN_PARSER) $<

$(GEN_LEXER): generator/lexer.l $(GEN_PARSER_H)
	@mkdir -p $(dir $@)
	flex -o $@ $<

# Flex and Bison output is third-party generated code: same standard, minus the warnings its
# skeletons are known to trigger.
$(BUILD)/obj/generator/lexer.o: $(GEN_LEXER)
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CPPFLAGS) $(CFLAGS_ALL) -Wno-unused-function -Wno-sign-compare -Wno-unused-parameter -c -o $@ $<
$(BUILD)/obj/generator/parser.o: $(GEN_PARSER)
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CPPFLAGS) $(CFLAGS_ALL) -Wno-unused-function -c -o $@ $<

$(BUILD)/obj/generator/%.o: generator/%.c $(GEN_PARSER_H)
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CPPFLAGS) $(CFLAGS_ALL) -c -o $@ $<

$(CKPTGEN): $(GEN_OBJS) $(GEN_FLEXBISON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^

# ---------------------------------------------------------------- schemas → C
# ckptgen names outputs by the schema's path below its -I root, so
# schemas/ckpt/builtin.ckpt becomes $(BUILD)/gen/ckpt/builtin.ckpt.{h,c}.
BUILTIN_GEN  := $(BUILD)/gen/ckpt/builtin.ckpt.c
$(BUILD)/gen/%.ckpt.c $(BUILD)/gen/%.ckpt.h: schemas/%.ckpt $(CKPTGEN)
	@mkdir -p $(dir $@)
	$(CKPTGEN) -I schemas -o $(BUILD)/gen --depfile $(BUILD)/gen/$*.ckpt.d $<

# Generated files reached only through pattern rules (builtin.ckpt.h is an order-only
# prerequisite) would otherwise be deleted by make as intermediates at the end of a build.
.SECONDARY:

EXAMPLE_PROTOS := $(shell find schemas/examples -name '*.proto' 2>/dev/null | sort)
EXAMPLE_PB_C   := $(EXAMPLE_PROTOS:schemas/%.proto=$(BUILD)/gen/%.pb-c.c)
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: schemas/%.proto
	@mkdir -p $(dir $@)
	protoc-c -Ischemas --c_out=$(BUILD)/gen $<

EXAMPLE_SCHEMAS := $(shell find schemas/examples -name '*.ckpt' 2>/dev/null | sort)
EXAMPLE_GEN_C   := $(EXAMPLE_SCHEMAS:schemas/%.ckpt=$(BUILD)/gen/%.ckpt.c)

-include $(wildcard $(BUILD)/gen/*.d $(BUILD)/gen/*/*.d $(BUILD)/gen/*/*/*.d)

# ---------------------------------------------------------------- runtime (libckpt)
RT_SRCS  := $(shell find runtime/src -name '*.c' | sort)
RT_OBJS  := $(RT_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/ckpt/builtin.ckpt.o

# libckpt's objects hide every symbol whose declaration lacks CKPT_API (ckpt/api.h), so
# libckpt.so exports its public API and nothing else; scripts/check-exports holds it to that.
$(RT_OBJS): private VISIBILITY := -fvisibility=hidden

$(BUILD)/obj/runtime/%.o: runtime/%.c | $(BUILD)/gen/ckpt/builtin.ckpt.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Iruntime/src $(CFLAGS_ALL) $(VISIBILITY) -c -o $@ $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(BUILD)/gen/ckpt/builtin.ckpt.h $(EXAMPLE_PB_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(VISIBILITY) -c -o $@ $<

# protoc-c output is third-party generated code (it casts away const in its tables).
$(BUILD)/obj/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

$(LIBCKPT_A): $(RT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(LIBCKPT_SO): $(RT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,libckpt.so.0 -o $@ $^ $(LDLIBS_ALL)

# ---------------------------------------------------------------- libckpt_mpi
# The MPI process group (ckpt/mpi.h, docs/multiprocess.md): a library of its own, so libckpt
# has no MPI dependency. Built when Open MPI's C bindings are installed (scripts/install-deps
# installs them); without them libckpt, the tool and the other suites build as before and the
# MPI suite reports a skip.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
MPIRUN     ?= $(shell command -v mpirun 2>/dev/null)
ifneq ($(MPI_LIBS),)
HAVE_MPI   := 1
LIBCKPT_MPI_A  := $(BUILD)/lib/libckpt_mpi.a
LIBCKPT_MPI_SO := $(BUILD)/lib/libckpt_mpi.so
MPI_SRCS := $(wildcard runtime/mpi/*.c)
MPI_OBJS := $(MPI_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/obj/runtime/mpi/%.o: runtime/mpi/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(MPI_CFLAGS) $(CFLAGS_ALL) -fvisibility=hidden -c -o $@ $<
$(LIBCKPT_MPI_A): $(MPI_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^
$(LIBCKPT_MPI_SO): $(MPI_OBJS) $(LIBCKPT_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,libckpt_mpi.so.0 -o $@ $(MPI_OBJS) -L$(BUILD)/lib -lckpt $(MPI_LIBS)
MPI_LIBS_BUILT := $(LIBCKPT_MPI_A) $(LIBCKPT_MPI_SO)

# The programs the MPI suite (tests/mpi) starts under mpirun: one per file of tests/mpi/ranks/,
# each rank printing its own pass/fail lines.
# The schemas beside them (tests/mpi/ranks/*.ckpt) are generated into mpi-ranks-gen/ and
# linked into each.
MPI_TEST_SRCS := $(wildcard tests/mpi/ranks/*.c)
MPI_TEST_BINS := $(MPI_TEST_SRCS:tests/mpi/ranks/%.c=$(BUILD)/tests/mpi-ranks/%)
MPI_RANKS_GENDIR := $(BUILD)/tests/mpi-ranks-gen
MPI_RANKS_CK_C := $(patsubst tests/mpi/ranks/%.ckpt,$(MPI_RANKS_GENDIR)/%.ckpt.c,$(wildcard tests/mpi/ranks/*.ckpt))
MPI_RANKS_CK_O := $(MPI_RANKS_CK_C:%.c=%.o)
$(MPI_RANKS_GENDIR)/%.ckpt.c $(MPI_RANKS_GENDIR)/%.ckpt.h: tests/mpi/ranks/%.ckpt $(CKPTGEN)
	@mkdir -p $(dir $@)
	$(CKPTGEN) -I tests/mpi/ranks -I schemas -o $(MPI_RANKS_GENDIR) $<
$(MPI_RANKS_GENDIR)/%.o: $(MPI_RANKS_GENDIR)/%.c
	$(CC) $(CPPFLAGS_ALL) -I$(MPI_RANKS_GENDIR) $(CFLAGS_ALL) -c -o $@ $<
$(BUILD)/tests/mpi-ranks/%: tests/mpi/ranks/%.c $(MPI_RANKS_CK_O) $(LIBCKPT_MPI_A) $(LIBCKPT_A) | $(BUILD)/gen/ckpt/builtin.ckpt.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Iruntime/src -I$(MPI_RANKS_GENDIR) $(MPI_CFLAGS) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< \
	  $(MPI_RANKS_CK_O) $(LIBCKPT_MPI_A) $(LIBCKPT_A) $(MPI_LIBS) $(LDLIBS_ALL)
endif

# Example schemas and their protos, compiled once for examples and tests.
EXAMPLES_LIB := $(BUILD)/lib/libckpt_examples.a
EXAMPLES_OBJS := $(EXAMPLE_GEN_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o) \
                 $(EXAMPLE_PB_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
$(EXAMPLES_OBJS): | $(EXAMPLE_GEN_C) $(EXAMPLE_PB_C)
$(EXAMPLES_LIB): $(EXAMPLES_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# ---------------------------------------------------------------- the ckpt tool
CLI_SRCS := $(wildcard runtime/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
$(CKPT_TOOL): $(CLI_OBJS) $(LIBCKPT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJS) $(LIBCKPT_A) $(LDLIBS_ALL)

ifneq ($(CLI_SRCS),)
TOOLS := $(CKPT_TOOL)
endif

# The crash-torture driver (docs/reliability.md, "Crash torture"): public API only, like a user's
# program. tests/torture runs a short version of it; make torture the long one.
TORTURE_BIN := $(BUILD)/bin/ckpt-torture
$(BUILD)/obj/tools/%.o: tools/%.c | $(BUILD)/gen/ckpt/builtin.ckpt.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<
$(TORTURE_BIN): $(BUILD)/obj/tools/torture/torture.o $(LIBCKPT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBCKPT_A) $(LDLIBS_ALL)

# examples/*_mpi/ are MPI programs: built (against libckpt_mpi and Open MPI) only with MPI.
EXAMPLE_PROGS := $(sort $(notdir $(patsubst %/,%,$(wildcard examples/*/))))
ifeq ($(HAVE_MPI),)
EXAMPLE_PROGS := $(filter-out %_mpi,$(EXAMPLE_PROGS))
endif
EXAMPLE_BINS  := $(EXAMPLE_PROGS:%=$(BUILD)/bin/examples/%)

all: $(CKPTGEN) $(LIBCKPT_A) $(LIBCKPT_SO) $(EXAMPLES_LIB) $(TOOLS) $(EXAMPLE_BINS) $(TORTURE_BIN) \
     $(MPI_LIBS_BUILT)

# ---------------------------------------------------------------- tests
# Each directory tests/<suite>/ becomes one Criterion binary $(BUILD)/tests/<suite> built from
# its *.c files, plus any *.proto and *.ckpt files beside them (compiled into
# $(BUILD)/tests/<suite>-gen/). Tests find the tree, the build and the peers through these
# macros.
TEST_SUITES := $(sort $(filter-out fixtures,$(notdir $(patsubst %/,%,$(wildcard tests/*/)))))
TEST_BINS   := $(TEST_SUITES:%=$(BUILD)/tests/%)
TEST_CPPFLAGS := $(CPPFLAGS_ALL) -Iruntime/src \
  -DCKPT_SOURCE_DIR='"$(CURDIR)"' -DCKPT_BUILD_DIR='"$(abspath $(BUILD))"' \
  -DCKPTGEN_PATH='"$(abspath $(CKPTGEN))"' -DCKPT_TOOL_PATH='"$(abspath $(CKPT_TOOL))"' \
  -DCKPT_PYTHON='"$(PYTHON)"' -DCKPT_CC='"$(CC)"' -DCKPT_MPIRUN='"$(MPIRUN)"' \
  -DCKPT_HAVE_MPI=$(if $(HAVE_MPI),1,0)
TEST_LDLIBS := -lcriterion

define TEST_SUITE_template
$(1)_SRCS   := $$(wildcard tests/$(1)/*.c)
$(1)_PROTOS := $$(wildcard tests/$(1)/*.proto)
$(1)_SCHEMAS:= $$(wildcard tests/$(1)/*.ckpt)
$(1)_GENDIR := $(BUILD)/tests/$(1)-gen
$(1)_PB_C   := $$($(1)_PROTOS:tests/$(1)/%.proto=$$($(1)_GENDIR)/%.pb-c.c)
$(1)_CK_C   := $$($(1)_SCHEMAS:tests/$(1)/%.ckpt=$$($(1)_GENDIR)/%.ckpt.c)
$(1)_OBJS   := $$($(1)_SRCS:%.c=$(BUILD)/obj/%.o) \
               $$($(1)_PB_C:%.c=%.o) $$($(1)_CK_C:%.c=%.o)

$$($(1)_GENDIR)/%.pb-c.c $$($(1)_GENDIR)/%.pb-c.h: tests/$(1)/%.proto
	@mkdir -p $$(dir $$@)
	protoc-c -Itests/$(1) --c_out=$$($(1)_GENDIR) $$<
$$($(1)_GENDIR)/%.ckpt.c $$($(1)_GENDIR)/%.ckpt.h: tests/$(1)/%.ckpt $(CKPTGEN) $$($(1)_PB_C)
	@mkdir -p $$(dir $$@)
	$(CKPTGEN) -I tests/$(1) -I schemas -o $$($(1)_GENDIR) $$<
$$($(1)_GENDIR)/%.o: $$($(1)_GENDIR)/%.c
	$(CC) $(TEST_CPPFLAGS) -I$$($(1)_GENDIR) $(CFLAGS_ALL) -c -o $$@ $$<
$(BUILD)/obj/tests/$(1)/%.o: tests/$(1)/%.c $$($(1)_PB_C) $$($(1)_CK_C) | $(BUILD)/gen/ckpt/builtin.ckpt.h $(EXAMPLE_GEN_C) $(EXAMPLE_PB_C)
	@mkdir -p $$(dir $$@)
	$(CC) $(TEST_CPPFLAGS) -I$$($(1)_GENDIR) $(CFLAGS_ALL) -c -o $$@ $$<
$(BUILD)/tests/$(1): $$($(1)_OBJS) $(EXAMPLES_LIB) $(LIBCKPT_A) | $(TOOLS) $(EXAMPLE_BINS) $(TORTURE_BIN)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS_ALL) -o $$@ $$($(1)_OBJS) $(EXAMPLES_LIB) $(LIBCKPT_A) $(TEST_LDLIBS) $(LDLIBS_ALL)
endef
$(foreach s,$(TEST_SUITES),$(eval $(call TEST_SUITE_template,$(s))))

# ---------------------------------------------------------------- examples
# Each directory examples/<name>/ becomes the program $(BUILD)/bin/examples/<name>, built from its
# *.c files plus its *.ckpt schemas and *.proto files, compiled the way a user's build would.

define EXAMPLE_template
ex_$(1)_SRCS   := $$(wildcard examples/$(1)/*.c)
ex_$(1)_PROTOS := $$(wildcard examples/$(1)/*.proto)
ex_$(1)_SCHEMAS:= $$(wildcard examples/$(1)/*.ckpt)
ex_$(1)_GENDIR := $(BUILD)/examples/$(1)-gen
ex_$(1)_PB_C   := $$(ex_$(1)_PROTOS:examples/$(1)/%.proto=$$(ex_$(1)_GENDIR)/%.pb-c.c)
ex_$(1)_CK_C   := $$(ex_$(1)_SCHEMAS:examples/$(1)/%.ckpt=$$(ex_$(1)_GENDIR)/%.ckpt.c)
ex_$(1)_OBJS   := $$(ex_$(1)_SRCS:%.c=$(BUILD)/obj/%.o) \
                  $$(ex_$(1)_PB_C:%.c=%.o) $$(ex_$(1)_CK_C:%.c=%.o)

$$(ex_$(1)_GENDIR)/%.pb-c.c $$(ex_$(1)_GENDIR)/%.pb-c.h: examples/$(1)/%.proto
	@mkdir -p $$(dir $$@)
	protoc-c -Iexamples/$(1) --c_out=$$(ex_$(1)_GENDIR) $$<
$$(ex_$(1)_GENDIR)/%.ckpt.c $$(ex_$(1)_GENDIR)/%.ckpt.h: examples/$(1)/%.ckpt $(CKPTGEN) $$(ex_$(1)_PB_C)
	@mkdir -p $$(dir $$@)
	$(CKPTGEN) -I examples/$(1) -I schemas -o $$(ex_$(1)_GENDIR) $$<
$$(ex_$(1)_GENDIR)/%.o: $$(ex_$(1)_GENDIR)/%.c
	$(CC) $(CPPFLAGS_ALL) -I$$(ex_$(1)_GENDIR) $(CFLAGS_ALL) -c -o $$@ $$<
$(BUILD)/obj/examples/$(1)/%.o: examples/$(1)/%.c $$(ex_$(1)_PB_C) $$(ex_$(1)_CK_C) | $(BUILD)/gen/ckpt/builtin.ckpt.h
	@mkdir -p $$(dir $$@)
	$(CC) $(CPPFLAGS_ALL) -I$$(ex_$(1)_GENDIR) $(if $(filter %_mpi,$(1)),$(MPI_CFLAGS)) $(CFLAGS_ALL) -c -o $$@ $$<
$(BUILD)/bin/examples/$(1): $$(ex_$(1)_OBJS) $(if $(filter %_mpi,$(1)),$(LIBCKPT_MPI_A)) $(LIBCKPT_A)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS_ALL) -o $$@ $$(ex_$(1)_OBJS) $(if $(filter %_mpi,$(1)),$(LIBCKPT_MPI_A)) $(LIBCKPT_A) $(if $(filter %_mpi,$(1)),$(MPI_LIBS)) $(LDLIBS_ALL)
# The same program linked against libckpt.so the way ckpt.pc links a user's (-lckpt plus the
# public dependencies cJSON and protobuf-c; -lm for train_mlp's own math): it links only if
# everything the program and its generated code call is exported. Linked, never run.
$(BUILD)/shared-examples/$(1): $$(ex_$(1)_OBJS) $(LIBCKPT_SO) $(if $(filter %_mpi,$(1)),$(LIBCKPT_MPI_SO))
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS_ALL) -o $$@ $$(ex_$(1)_OBJS) -L$(BUILD)/lib $(if $(filter %_mpi,$(1)),-lckpt_mpi) -lckpt $(if $(filter %_mpi,$(1)),$(MPI_LIBS)) $(SHARED_EXAMPLE_LIBS)
endef
SHARED_EXAMPLE_LIBS := $(shell pkg-config --libs libcjson libprotobuf-c 2>/dev/null || echo -lcjson -lprotobuf-c) -lm
SHARED_EXAMPLE_BINS := $(EXAMPLE_PROGS:%=$(BUILD)/shared-examples/%)
$(foreach e,$(EXAMPLE_PROGS),$(eval $(call EXAMPLE_template,$(e))))

# ---------------------------------------------------------------- fuzzing
# fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput for one reader (docs/reliability.md,
# "Fuzzing"). Each is linked twice: with fuzz/replay.c into $(BUILD)/fuzz/replay-<target>, which
# `make test` runs on fuzz/corpus/<target> and fuzz/regressions/<target> with the normal compiler
# and flags (under ASan/UBSan in `make check`), and, in `make fuzz` only, with libFuzzer into
# build/fuzz/fuzz/fuzz-<target>. The schema target carries ckptgen's objects (minus its main),
# the pbtxt target the test protos of tests/runtime compiled with protoc-c.
FUZZ_TARGETS := $(sort $(patsubst fuzz/fuzz_%.c,%,$(filter-out fuzz/fuzz_util.c,$(wildcard fuzz/fuzz_*.c))))
FUZZ_CPPFLAGS := $(CPPFLAGS_ALL) -Iruntime/src -Igenerator -I$(BUILD)/generator \
  -I$(runtime_GENDIR) -DCKPT_SOURCE_DIR='"$(CURDIR)"'
FUZZ_COMMON  := $(BUILD)/obj/fuzz/fuzz_util.o
FUZZ_EXTRA_schema := $(filter-out $(BUILD)/obj/generator/main.o,$(GEN_OBJS)) $(GEN_FLEXBISON_OBJS)
FUZZ_EXTRA_pbtxt  := $(runtime_GENDIR)/pbtxt_test2.pb-c.o $(runtime_GENDIR)/pbtxt_test3.pb-c.o
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay-%)
FUZZ_BINS        := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz-%)
FUZZ_SECONDS ?= 20
FUZZ_ARGS    ?=

$(BUILD)/obj/fuzz/%.o: fuzz/%.c $(GEN_PARSER_H) $(FUZZ_EXTRA_pbtxt:%.o=%.c) | $(BUILD)/gen/ckpt/builtin.ckpt.h
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CPPFLAGS) $(CFLAGS_ALL) -c -o $@ $<

define FUZZ_template
$(BUILD)/fuzz/replay-$(1): $(BUILD)/obj/fuzz/fuzz_$(1).o $(BUILD)/obj/fuzz/replay.o $(FUZZ_COMMON) $$(FUZZ_EXTRA_$(1)) $(LIBCKPT_A)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS_ALL) -o $$@ $$^ $(LDLIBS_ALL)
$(BUILD)/fuzz/fuzz-$(1): $(BUILD)/obj/fuzz/fuzz_$(1).o $(FUZZ_COMMON) $$(FUZZ_EXTRA_$(1)) $(LIBCKPT_A)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $$@ $$^ $(LDLIBS_ALL)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_template,$(t))))

# Each target runs FUZZ_SECONDS on a working corpus under build/fuzz (seeded from fuzz/corpus and
# fuzz/regressions, which it never writes to); a crash, leak, UB report or timeout stops that
# target, leaves the input in build/fuzz/crashes/<target>/ and fails the run. Temporary files
# of the targets that need them go to /dev/shm when it exists (faster than a disk).
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang FUZZ=1 fuzz-run

fuzz-run: $(FUZZ_BINS)
	@status=0; tmp=$${TMPDIR:-/tmp}; [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm; \
	for t in $(FUZZ_TARGETS); do \
	  work=$(BUILD)/fuzz/corpus/$$t; crashes=$(BUILD)/fuzz/crashes/$$t; \
	  mkdir -p $$work $$crashes; \
	  seeds=fuzz/corpus/$$t; [ -d fuzz/regressions/$$t ] && seeds="$$seeds fuzz/regressions/$$t"; \
	  dict=; [ -f fuzz/dict/$$t.dict ] && dict=-dict=fuzz/dict/$$t.dict; \
	  echo "== fuzz $$t: $(FUZZ_SECONDS) s"; \
	  if ! TMPDIR=$$tmp $(BUILD)/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	      -print_final_stats=1 -artifact_prefix=$$crashes/ $$dict $(FUZZ_ARGS) $$work $$seeds \
	      2>$(BUILD)/fuzz/$$t.log; then \
	    grep -av '^#[0-9]' $(BUILD)/fuzz/$$t.log | tail -n 25; status=1; \
	    echo "== fuzz $$t FAILED: input in $$crashes/ (fix it, then add it to fuzz/regressions/$$t/)"; \
	  else \
	    grep -aE 'DONE|stat::number_of_executed_units' $(BUILD)/fuzz/$$t.log; \
	  fi; \
	done; exit $$status

# ---------------------------------------------------------------- exported symbols
# libckpt.so exports exactly the declarations of the public headers that carry CKPT_API
# (scripts/check-exports says what differs), and the examples link against it alone.
# ckpt/mpi.h is libckpt_mpi's, checked against libckpt_mpi.so on its own.
PUBLIC_HEADERS := $(sort $(filter-out runtime/include/ckpt/mpi.h,$(wildcard runtime/include/ckpt/*.h))) \
                  $(BUILD)/gen/ckpt/builtin.ckpt.h
MPI_PUBLIC_HEADERS := runtime/include/ckpt/mpi.h
check-exports: $(LIBCKPT_SO) $(SHARED_EXAMPLE_BINS) $(MPI_LIBS_BUILT)
	$(PYTHON) scripts/check-exports $(LIBCKPT_SO) $(PUBLIC_HEADERS)
	$(if $(HAVE_MPI),$(PYTHON) scripts/check-exports $(LIBCKPT_MPI_SO) $(MPI_PUBLIC_HEADERS))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Runs every suite even when one fails, then fails if any did. Sanitizer reports go to files
# under $(BUILD)/sanitizer-logs, because Criterion counts a test as passed even when
# LeakSanitizer reports a leak at the worker's exit: any report there fails the run (this also
# catches leaks in child processes the tests start, such as ckptgen). print_suppressions=0: LSan
# would otherwise log the statistics of a matched suppression, which is not a report.
SAN_LOG_DIR := $(abspath $(BUILD))/sanitizer-logs
run-tests: all $(TEST_BINS) $(SHARED_EXAMPLE_BINS) $(FUZZ_REPLAY_BINS) $(MPI_TEST_BINS)
	@status=0; rm -rf $(SAN_LOG_DIR); mkdir -p $(SAN_LOG_DIR); \
	echo "== scripts/check-exports"; \
	$(PYTHON) scripts/check-exports $(LIBCKPT_SO) $(PUBLIC_HEADERS) || status=1; \
	$(if $(HAVE_MPI),$(PYTHON) scripts/check-exports $(LIBCKPT_MPI_SO) $(MPI_PUBLIC_HEADERS) || status=1;) \
	for t in $(TEST_BINS); do \
	  echo "== $$t"; \
	  ASAN_OPTIONS="log_path=$(SAN_LOG_DIR)/asan:$$ASAN_OPTIONS" \
	  UBSAN_OPTIONS="log_path=$(SAN_LOG_DIR)/ubsan:print_stacktrace=1:$$UBSAN_OPTIONS" \
	  LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0:$$LSAN_OPTIONS" \
	    $$t --jobs 2 || status=1; \
	done; \
	for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz replay $$t"; \
	  regress=; [ -d fuzz/regressions/$$t ] && regress=fuzz/regressions/$$t; \
	  ASAN_OPTIONS="log_path=$(SAN_LOG_DIR)/asan:$$ASAN_OPTIONS" \
	  UBSAN_OPTIONS="log_path=$(SAN_LOG_DIR)/ubsan:print_stacktrace=1:$$UBSAN_OPTIONS" \
	    $(BUILD)/fuzz/replay-$$t fuzz/corpus/$$t $$regress || status=1; \
	done; \
	if [ -n "$$(ls -A $(SAN_LOG_DIR))" ]; then \
	  echo "== sanitizer reports (each one fails the run):"; \
	  for f in $(SAN_LOG_DIR)/*; do echo "-- $$f"; head -n 60 "$$f"; done; \
	  status=1; \
	fi; \
	exit $$status

deps:
	@scripts/install-deps

# docs/architecture.md, "Layers": which folder may include which, the tool's one inspection
# header, JSON text only through the JSON module.
layers:
	@$(PYTHON) scripts/check-layers

test: deps
	@$(MAKE) --no-print-directory layers run-tests

check: deps
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 layers run-tests

golden: $(CKPTGEN)
	@scripts/update-golden $(CKPTGEN)

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench $(BUILD)

examples: all

# N trials per mode (each: a child saving through an async manager, SIGKILLed at a random
# moment, then the checks); the protocol points of the commit and the deletions first.
TORTURE_TRIALS ?= 200
TORTURE_SEED   ?=
torture: deps
	@$(MAKE) --no-print-directory all
	$(TORTURE_BIN) --trials $(TORTURE_TRIALS) --edge-trials all \
	  $(if $(TORTURE_SEED),--seed $(TORTURE_SEED))

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo $(BUILD)

# ---------------------------------------------------------------- install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/ckpt \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/ckpt/schemas/ckpt \
	  $(DESTDIR)$(PREFIX)/lib/cmake/ckpt
	install -m 755 $(CKPTGEN) $(DESTDIR)$(PREFIX)/bin/ckptgen
	if [ -f $(CKPT_TOOL) ]; then install -m 755 $(CKPT_TOOL) $(DESTDIR)$(PREFIX)/bin/ckpt; fi
	install -m 644 runtime/include/ckpt/*.h $(BUILD)/gen/ckpt/builtin.ckpt.h $(DESTDIR)$(PREFIX)/include/ckpt/
	install -m 644 $(LIBCKPT_A) $(DESTDIR)$(PREFIX)/lib/libckpt.a
	install -m 755 $(LIBCKPT_SO) $(DESTDIR)$(PREFIX)/lib/libckpt.so.0
	ln -sf libckpt.so.0 $(DESTDIR)$(PREFIX)/lib/libckpt.so
	install -m 644 schemas/ckpt/builtin.ckpt $(DESTDIR)$(PREFIX)/share/ckpt/schemas/ckpt/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/.*CKPT_VERSION_STRING "\(.*\)".*/\1/p' runtime/include/ckpt/desc.h)|g' \
	  scripts/ckpt.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ckpt.pc
	install -m 644 scripts/ckptgen.mk $(DESTDIR)$(PREFIX)/share/ckpt/ckptgen.mk
	install -m 644 scripts/CkptGen.cmake $(DESTDIR)$(PREFIX)/lib/cmake/ckpt/CkptGen.cmake
ifneq ($(HAVE_MPI),)
	install -m 644 $(LIBCKPT_MPI_A) $(DESTDIR)$(PREFIX)/lib/libckpt_mpi.a
	install -m 755 $(LIBCKPT_MPI_SO) $(DESTDIR)$(PREFIX)/lib/libckpt_mpi.so.0
	ln -sf libckpt_mpi.so.0 $(DESTDIR)$(PREFIX)/lib/libckpt_mpi.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/.*CKPT_VERSION_STRING "\(.*\)".*/\1/p' runtime/include/ckpt/desc.h)|g' \
	  scripts/ckpt-mpi.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ckpt-mpi.pc
endif

clean:
	rm -rf build
