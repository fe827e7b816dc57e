# GSLB DNS server - one plain GNU Makefile.
# Objects in $(BUILD)/, binaries in $(BIN)/. Every .c under common/ geo/
# health/ policy/ db/ dnsd/ ctl/ goes into one static library, except
# *_main.c files, which are the programs. tests/unit/test_*.c are one binary
# per module. Build tools (code generators, the layering check) are in
# tools/.
#
# `make` first runs `deps` (installs missing Debian packages; nothing when
# all are there, so no network is needed then), and only then builds in a
# second make, which reads pkg-config's flags of the installed libraries:
# `make -j` on a fresh machine never compiles before the headers exist.

PKGS   := ldns libmaxminddb libevent libevent_openssl libevent_pthreads \
          sqlite3 jansson yajl liburcu-qsbr openssl libsystemd libxdp libbpf
WARN   := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
          -Wmissing-prototypes -Wpointer-arith -Wvla
CC     ?= cc
# OPT and SANITIZE are what the asan/tsan targets change; CFLAGS from the
# environment or command line is added last.
OPT      ?= -O2 -g
SANITIZE ?=
override CFLAGS := $(OPT) $(SANITIZE) -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -I. \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
override LDFLAGS := $(SANITIZE) $(LDFLAGS)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
WERROR ?= 1
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif

BUILD  ?= build
BIN    ?= bin
PYTHON := /usr/bin/python3

# Debian packages that the build and the tests need (make deps).
DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev \
            libldns-dev libmaxminddb-dev libevent-dev libsqlite3-dev \
            libjansson-dev libyajl-dev liburcu-dev libssl-dev libsystemd-dev sqlite3 \
            python3 python3-dnspython dnsutils libmaxmind-db-writer-perl \
            mmdb-bin iproute2 openssl curl prometheus man-db groff-base \
            systemd libxdp-dev libbpf-dev ethtool procps \
            chromium chromium-driver python3-selenium debhelper lintian \
            bind9-dnsutils unbound ldnsutils etcd-server etcd-client

SRCDIRS  := common geo health policy db cluster dnsd ctl
ALL_SRCS := $(filter-out %.bpf.c,$(foreach d,$(SRCDIRS),$(wildcard $(d)/*.c)))
MAIN_SRCS:= $(filter %_main.c,$(ALL_SRCS))
LIB_SRCS := $(filter-out %_main.c,$(ALL_SRCS))
# The XDP program (dnsd/xdp_filter.bpf.c, for the kernel) is compiled by
# clang for the BPF target and embedded in the library as a byte array.
BPF_OBJ  := $(BUILD)/dnsd/xdp_filter.bpf.o
BPF_EMB  := $(BUILD)/dnsd/xdp_filter_obj.c
# The status page (web/: plain HTML, CSS, JavaScript and the map outline)
# is embedded the same way, each file plain and gzip-compressed (webui.c).
BIN2C    := tools/bin2c.py
WEB_FILES:= web/index.html web/app.js web/app.css web/world.svg
WEB_EMB  := $(WEB_FILES:web/%=$(BUILD)/web/%.c) $(WEB_FILES:web/%=$(BUILD)/web/%.gz.c)
# docs/openapi.json, served at /v1/openapi.json, embedded as a C array.
OPENAPI_EMB := $(BUILD)/docs/openapi_json.c
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BPF_EMB:%.c=%.o) $(WEB_EMB:%.c=%.o) \
            $(OPENAPI_EMB:%.c=%.o)
LIB      := $(BUILD)/libgslb.a

# db/schema.sql embedded as a C string, generated into the build tree.
SCHEMA_C := $(BUILD)/db/schema_sql.c
LIB_OBJS += $(SCHEMA_C:%.c=%.o)

PROGS    := $(BIN)/dnsd $(BIN)/gslbctl $(BIN)/gslb-probe
UNIT_SRCS:= $(wildcard tests/unit/test_*.c)
UNIT_BINS:= $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all build deb deps generated layers test unit integration run cluster-demo bench bench-scale asan tsan fuzz clean check install uninstall
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

build: $(PROGS) $(UNIT_BINS)

deps:
	@missing=$$(dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' $(DEB_PKGS) 2>/dev/null \
	  | awk '$$1=="ii" {print $$2}' | sort > .deps.ok; \
	  for p in $(DEB_PKGS); do grep -qx "$$p" .deps.ok || echo $$p; done); \
	rm -f .deps.ok; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing" $$missing; \
	  rcd=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; rcd=1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  st=$$?; [ -n "$$rcd" ] && rm -f /usr/sbin/policy-rc.d; exit $$st; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BPF_OBJ): dnsd/xdp_filter.bpf.c dnsd/xdp_key.h
	@mkdir -p $(dir $@)
	clang -O2 -g -target bpf -Wall -Wextra -Werror -I. \
	  -I/usr/include/$(shell $(CC) -dumpmachine) -c -o $@ $<

$(BPF_EMB): $(BPF_OBJ) tools/bin2c.py
	$(PYTHON) tools/bin2c.py xdp_filter_obj $< $@

$(BPF_EMB:%.c=%.o): $(BPF_EMB)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/web/%.gz.c: web/% $(BIN2C)
	@mkdir -p $(dir $@)
	gzip -9nc $< > $(@:.c=)
	$(PYTHON) $(BIN2C) web_$(subst .,_,$*)_gz $(@:.c=) $@

$(BUILD)/web/%.c: web/% $(BIN2C)
	@mkdir -p $(dir $@)
	$(PYTHON) $(BIN2C) web_$(subst .,_,$*) $< $@

$(WEB_EMB:%.c=%.o): %.o: %.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(OPENAPI_EMB): docs/openapi.json $(BIN2C)
	@mkdir -p $(dir $@)
	$(PYTHON) $(BIN2C) api_openapi_json $< $@

$(OPENAPI_EMB:%.c=%.o): $(OPENAPI_EMB)
	$(CC) $(CFLAGS) -c -o $@ $<

$(SCHEMA_C): db/schema.sql tools/schema2c.py
	@mkdir -p $(dir $@)
	$(PYTHON) tools/schema2c.py $< $@

$(SCHEMA_C:%.c=%.o): $(SCHEMA_C)
	$(CC) $(CFLAGS) -c -o $@ $<

# Build trees from before the schema was generated here have dependency
# files naming db/schema_sql.c; this lets them rebuild once.
db/schema_sql.c: ;

# The generated sources (for builds outside this Makefile: tests/fuzz/run.sh).
generated: $(BPF_EMB) $(SCHEMA_C) $(WEB_EMB) $(OPENAPI_EMB)

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/dnsd: $(BUILD)/dnsd/dnsd_main.o $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/gslbctl: $(BUILD)/ctl/gslbctl_main.o $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/gslb-probe: $(BUILD)/health/probe_main.o $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) tests/unit/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Which folder may include which (README "How it fits together"); fails on
# an include across a forbidden edge or a cycle between modules.
layers:
	@$(PYTHON) tools/layers.py --self-test && $(PYTHON) tools/layers.py

# Unit binaries, then integration scripts; one summary line at the end.
# TEST_RUN prefixes the runner (the tsan target sets it, see there).
TEST_RUN ?=
test: all layers
	@BIN=$(abspath $(BIN)) BUILD=$(abspath $(BUILD)) $(TEST_RUN) $(PYTHON) tests/run_tests.py $(UNIT_BINS)

unit: all layers
	@BIN=$(abspath $(BIN)) BUILD=$(abspath $(BUILD)) $(PYTHON) tests/run_tests.py --unit-only $(UNIT_BINS)

check: all
	$(BIN)/dnsd --check --zone zones/example.com.zone

# The sanitizer builds run the whole suite; tests/run_tests.py fails a test
# when any process it started wrote a sanitizer report. GSLB_TIME_FACTOR
# tells timing-based tests how much slower these builds are (their bounds
# scale with it; tests/integration/gslbtest.py).
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan: deps
	GSLB_TIME_FACTOR=3 $(MAKE) BUILD=build-asan BIN=build-asan/bin OPT="-O1 -g" SANITIZE="$(SAN)" test

# gcc 12's ThreadSanitizer puts its shadow memory at fixed addresses and
# stops with "FATAL: ThreadSanitizer: unexpected memory mapping" where the
# kernel randomizes mmap over more bits than it expects (vm.mmap_rnd_bits
# above 28 on some newer kernels). The tests therefore run with address
# space randomization off (setarch -R, inherited by every process they
# start), which works on any kernel; without setarch they run as they are.
TSAN_RUN := $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
tsan: deps
	GSLB_TIME_FACTOR=5 $(MAKE) BUILD=build-tsan BIN=build-tsan/bin OPT="-O1 -g" \
	  SANITIZE="-fsanitize=thread" TEST_RUN="$(TSAN_RUN)" test

run: all
	@$(PYTHON) tests/demo.py

# Three etcd members and three dnsd sharing one configuration, on loopback.
cluster-demo: all
	@$(PYTHON) tests/cluster_demo.py

bench: all
	@bash bench/run.sh

# Many balanced names: start, RSS, flip and health transition to served
# while queries run (bench/scale.py; BENCH_SCALE="100000 1000000").
bench-scale: all
	@$(PYTHON) bench/scale.py

fuzz: deps
	@bash tests/fuzz/run.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz bin

# make install [DESTDIR=DIR] [PREFIX=/usr/local]: programs, man pages, the
# systemd units (their @SBINDIR@/@SYSCONFDIR@ filled in here, so ExecStart
# names the installed binary) and the example configuration. The units go to
# $(PREFIX)/lib/systemd/system (/usr/local/lib/systemd/system and
# /usr/lib/systemd/system are both on systemd's search path).
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INST_MAN5  := dnsd.conf.5
INST_MAN8  := dnsd.8 gslb-probe.8 gslbctl.8
INST_UNITS := dnsd.service gslb-probe@.service
INST_ETC   := dnsd.conf.example probe.env.example
INST_SUBST := sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

install: $(PROGS)
	install -D -m 0755 $(BIN)/dnsd $(DESTDIR)$(SBINDIR)/dnsd
	install -D -m 0755 $(BIN)/gslb-probe $(DESTDIR)$(SBINDIR)/gslb-probe
	install -D -m 0755 $(BIN)/gslbctl $(DESTDIR)$(BINDIR)/gslbctl
	for f in $(INST_MAN5); do install -D -m 0644 man/$$f $(DESTDIR)$(MANDIR)/man5/$$f || exit 1; done
	for f in $(INST_MAN8); do install -D -m 0644 man/$$f $(DESTDIR)$(MANDIR)/man8/$$f || exit 1; done
	@mkdir -p $(BUILD)/dist
	for f in $(INST_UNITS) $(INST_ETC); do $(INST_SUBST) dist/$$f > $(BUILD)/dist/$$f || exit 1; done
	for f in $(INST_UNITS); do install -D -m 0644 $(BUILD)/dist/$$f $(DESTDIR)$(UNITDIR)/$$f || exit 1; done
	for f in $(INST_ETC); do install -D -m 0644 $(BUILD)/dist/$$f $(DESTDIR)$(SYSCONFDIR)/gslb/$$f || exit 1; done

# make deb: the Debian packages (debian/), built with dpkg-buildpackage from a
# copy of the source tree in $(BUILD)/deb/src, so the .debs land in
# $(BUILD)/deb; then lintian, which must report no error.
deb:
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	tar -c --exclude=./build --exclude='./build-*' --exclude=./bin --exclude=./.git \
	  --exclude=./bench/out . | tar -x -C $(BUILD)/deb/src
	cd $(BUILD)/deb/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BIN -u BUILD \
	  dpkg-buildpackage -us -uc -b
	lintian --fail-on error --tag-display-limit 0 $(BUILD)/deb/*.changes

# Removes what install put there; never a dnsd.conf, token or store.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dnsd $(DESTDIR)$(SBINDIR)/gslb-probe $(DESTDIR)$(BINDIR)/gslbctl \
	      $(INST_MAN5:%=$(DESTDIR)$(MANDIR)/man5/%) $(INST_MAN8:%=$(DESTDIR)$(MANDIR)/man8/%) \
	      $(INST_UNITS:%=$(DESTDIR)$(UNITDIR)/%) $(INST_ETC:%=$(DESTDIR)$(SYSCONFDIR)/gslb/%)
	rmdir $(DESTDIR)$(SYSCONFDIR)/gslb 2>/dev/null || true

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
