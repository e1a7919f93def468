# ckptgen.mk — make rules that run ckptgen on .ckpt schemas the way protoc-c rules run on .proto
# files. Installed as $(PREFIX)/share/ckpt/ckptgen.mk; find it with
#   pkg-config --variable=ckptgen_mk ckpt
#
# Usage (GNU make; see docs/build-integration.md):
#
#   CKPTGEN_SRCDIR := schemas          # the import root of your schemas (default: .)
#   CKPTGEN_OUTDIR := gen              # where NAME.ckpt.c / NAME.ckpt.h go (default: .)
#   include $(shell pkg-config --variable=ckptgen_mk ckpt)
#
#   SCHEMAS  := schemas/app/model.ckpt
#   CFLAGS   += $(CKPT_CFLAGS) -I$(CKPTGEN_OUTDIR)
#   LDLIBS   += $(CKPT_LIBS)            # or $(CKPT_STATIC_LIBS) to link libckpt.a
#   trainer: main.o $(call ckptgen_o,$(SCHEMAS))
#   main.o: $(call ckptgen_h,$(SCHEMAS))
#   -include $(call ckptgen_d,$(SCHEMAS))
#
# CKPTGEN_SRCDIR and CKPTGEN_OUTDIR must be set before the include: make expands the target and
# prerequisite patterns of a rule when it reads it. Every other variable may be set later.
# A schema at $(CKPTGEN_SRCDIR)/app/model.ckpt becomes $(CKPTGEN_OUTDIR)/app/model.ckpt.{c,h},
# because ckptgen names its outputs by the schema's path below its -I root, and other schemas
# import it as "app/model.ckpt".

ifndef CKPTGEN_MK_INCLUDED
CKPTGEN_MK_INCLUDED := 1

# The installation this fragment belongs to: <prefix>/share/ckpt/ckptgen.mk. Deriving paths from
# the fragment's own location keeps the generator, the built-in schemas and the library of one
# installation together even when several are installed side by side.
CKPT_MK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
CKPT_PREFIX ?= $(abspath $(CKPT_MK_DIR)/../..)

CKPTGEN ?= $(CKPT_PREFIX)/bin/ckptgen
CKPT_SCHEMADIR ?= $(CKPT_PREFIX)/share/ckpt/schemas
PKG_CONFIG ?= pkg-config
# pkg-config looks at this installation first, so that the flags match the generator above.
CKPT_PKG_CONFIG := PKG_CONFIG_PATH="$(CKPT_PREFIX)/lib/pkgconfig$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH}" $(PKG_CONFIG)

CKPTGEN_SRCDIR ?= .
CKPTGEN_OUTDIR ?= .
# Extra import roots (-I) and flags for every ckptgen run.
CKPTGEN_INCLUDES ?=
CKPTGEN_FLAGS ?=

# Computed once (`:=`): each $(shell) would otherwise run at every expansion.
ifndef CKPT_CFLAGS
CKPT_CFLAGS := $(shell $(CKPT_PKG_CONFIG) --cflags ckpt)
endif
ifndef CKPT_LIBS
CKPT_LIBS := $(shell $(CKPT_PKG_CONFIG) --libs ckpt)
endif
# Static libckpt with the shared system libraries it needs: the archive by path (so the linker
# cannot prefer libckpt.so), then the private dependencies pkg-config lists with --static.
ifndef CKPT_STATIC_LIBS
CKPT_STATIC_LIBS := $(shell $(CKPT_PKG_CONFIG) --variable=static_lib ckpt) \
                    $(filter-out -lckpt,$(shell $(CKPT_PKG_CONFIG) --static --libs ckpt))
endif

# "." maps to no prefix at all: make matches `model.ckpt` against `%.ckpt`, not `./%.ckpt`.
ckptgen_dir_ = $(if $(filter .,$(patsubst %/,%,$(1))),,$(patsubst %/,%,$(1))/)
CKPTGEN_SRC_ := $(call ckptgen_dir_,$(CKPTGEN_SRCDIR))
CKPTGEN_OUT_ := $(call ckptgen_dir_,$(CKPTGEN_OUTDIR))

# $(call ckptgen_c,SCHEMAS) etc.: the files generated from SCHEMAS (paths under CKPTGEN_SRCDIR).
ckptgen_c = $(patsubst $(CKPTGEN_SRC_)%.ckpt,$(CKPTGEN_OUT_)%.ckpt.c,$(1))
ckptgen_h = $(patsubst $(CKPTGEN_SRC_)%.ckpt,$(CKPTGEN_OUT_)%.ckpt.h,$(1))
ckptgen_o = $(patsubst $(CKPTGEN_SRC_)%.ckpt,$(CKPTGEN_OUT_)%.ckpt.o,$(1))
ckptgen_d = $(patsubst $(CKPTGEN_SRC_)%.ckpt,$(CKPTGEN_OUT_)%.ckpt.d,$(1))

# One run writes both outputs (a multi-target pattern rule is a single recipe) and a depfile
# naming every schema and .proto the schema imports, so editing an import regenerates it.
# ckptgen itself is a prerequisite when it is a path, so upgrading it regenerates everything.
$(CKPTGEN_OUT_)%.ckpt.c $(CKPTGEN_OUT_)%.ckpt.h: $(CKPTGEN_SRC_)%.ckpt $(wildcard $(CKPTGEN))
	@mkdir -p $(@D)
	$(CKPTGEN) -I $(CKPTGEN_SRCDIR) $(addprefix -I ,$(CKPTGEN_INCLUDES)) -I $(CKPT_SCHEMADIR) \
	  $(CKPTGEN_FLAGS) -o $(CKPTGEN_OUTDIR) --depfile $(CKPTGEN_OUT_)$*.ckpt.d $<

# Generated sources reached only through the %.o: %.c chain would count as intermediate files,
# which make deletes after the build; keep them (users read them, debuggers show them).
.PRECIOUS: $(CKPTGEN_OUT_)%.ckpt.c $(CKPTGEN_OUT_)%.ckpt.h

endif
