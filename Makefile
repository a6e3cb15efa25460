# signal-server build. `make run` and `make test` install what is missing first
# (scripts/setup.sh), so on a fresh Debian 12 machine they are the whole setup.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wformat=2
CPPFLAGS := -std=c11 -D_GNU_SOURCE -Isrc
LIBS    := -luv -lhttp_parser -ljwt -lssl -lcrypto -lsystemd -lhiredis
PYTHON  := /usr/bin/python3

SRC     := $(filter-out src/main.c,$(wildcard src/sig_*.c))
WEB     := $(sort $(wildcard web/*))
OBJ     := $(SRC:src/%.c=build/obj/%.o) build/obj/sig_assets.o
ASAN_OBJ := $(SRC:src/%.c=build/asan/obj/%.o) build/asan/obj/sig_assets.o
UNIT    := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BIN := $(UNIT:tests/unit/%.c=build/asan/tests/%)
BENCH_BIN := build/bench/loadgen build/bench/floor build/bench/test_bjson build/bench/tlsgen
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# libFuzzer targets (fuzz/fuzz_*.c) on the parsers, built with clang; `make fuzz` runs each for
# FUZZ_SECONDS (default 10 min), `make test` for 20 s.
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_OBJ := $(SRC:src/%.c=build/fuzz/obj/%.o)
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 600

.PHONY: all run test deps unit integration asan asan-integration clean format fuzz

all: build/signal-server build/signal-server.toml

deps:
	@scripts/setup.sh

run: deps all
	./build/signal-server

test: deps all $(UNIT_BIN) $(ASAN_UNIT_BIN) build/asan/signal-server $(BENCH_BIN) $(FUZZ_BIN)
	scripts/run-tests.sh

build/signal-server: build/obj/main.o build/libsig.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

build/signal-server.toml: signal-server.toml
	@mkdir -p build
	cp $< $@

build/libsig.a: $(OBJ)
	$(AR) rcs $@ $^

build/obj/%.o: src/%.c $(wildcard src/*.h) build/generated.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibuild $(CFLAGS) $(WARN) -MMD -c -o $@ $<

build/sig_assets.c: $(WEB) scripts/embed.sh
	@mkdir -p build
	scripts/embed.sh $@ $(WEB)

build/obj/sig_assets.o: build/sig_assets.c src/sig_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

build/asan/obj/sig_assets.o: build/sig_assets.c src/sig_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SANFLAGS) $(WARN) -c -o $@ $<

build/generated.h: VERSION
	@mkdir -p build
	printf '#define SIG_VERSION "%s"\n' "$$(cat VERSION)" > $@

build/tests/%: tests/unit/%.c build/libsig.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibuild $(CFLAGS) $(WARN) -Wno-missing-prototypes -o $@ $^ $(LIBS) -lcmocka

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do echo "== $$t"; $$t || exit 1; done

asan: build/asan/signal-server

build/asan/signal-server: build/asan/obj/main.o $(ASAN_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)

build/asan/libsig.a: $(ASAN_OBJ)
	$(AR) rcs $@ $^

build/asan/tests/%: tests/unit/%.c build/asan/libsig.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibuild $(SANFLAGS) $(WARN) -Wno-missing-prototypes -o $@ $^ $(LIBS) -lcmocka

build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h) build/generated.h
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -Ibuild $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/libsig.a: $(FUZZ_OBJ)
	$(AR) rcs $@ $^

build/fuzz/fuzz_%: fuzz/fuzz_%.c build/fuzz/libsig.a
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz: deps $(FUZZ_BIN)
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

build/asan/obj/%.o: src/%.c $(wildcard src/*.h) build/generated.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibuild $(SANFLAGS) $(WARN) -c -o $@ $<

integration: all
	$(PYTHON) -m pytest -q tests/integration

clean:
	rm -rf build

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c fuzz/*.c bench/*.c bench/*.h

-include $(OBJ:.o=.d) build/obj/main.d

# ---- Benchmarks (bench/, BENCHMARKS.md). `make test` runs only the smoke mode.
# `make bench` installs what it needs (scripts/setup-bench.sh: matplotlib, PeerJS into
# bench/node_modules) and writes the BENCHMARKS.md section and its plots (7-12 min);
# `make bench-smoke` is a seconds-long run against signal-server and the floor, then
# signal-server with HS256 auth (refusals, tokens), then two cluster nodes and one Redis (2 s of
# cross-node exchanges), that fails on any error; `make bench-hold` holds 19,900 idle peers for
# 10 minutes; `make bench-hold-workers` 79,600 on 4 workers (issue 13) for 10 minutes, and
# `make bench-million-peers` (opt-in, ~20 minutes, most of the machine's memory) pushes toward a
# million on ~53 workers, both inside a private network namespace (root, or unshare -rn).

# ---- The abuse campaign (tests/abuse/campaign.py, docs/SECURITY.md): every attack of the
# abuse review at full size against the release and the ASan+UBSan builds, one table each.
# Not in `make test` (about 2 + 5 minutes).

.PHONY: abuse

abuse: deps all build/asan/signal-server
	$(PYTHON) tests/abuse/campaign.py --bin build/signal-server
	ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  $(PYTHON) tests/abuse/campaign.py --bin build/asan/signal-server

.PHONY: bench bench-smoke bench-hold bench-hold-workers bench-million-peers

bench: deps all $(BENCH_BIN)
	scripts/setup-bench.sh
	$(MAKE) build/bench/go-signal
	$(PYTHON) bench/run.py

bench-smoke: all $(BENCH_BIN)
	$(PYTHON) bench/run.py --smoke

bench-hold: deps all $(BENCH_BIN)
	$(PYTHON) bench/run.py --hold

bench-hold-workers: deps all $(BENCH_BIN)
	$(PYTHON) bench/run.py --hold --hold-workers 4

bench-million-peers: deps all $(BENCH_BIN)
	$(PYTHON) bench/run.py --million-peers 1000000

# The Go peer, built offline from Debian's Go and gorilla/websocket (scripts/setup-bench.sh).
build/bench/go-signal: bench/goserver/main.go
	@mkdir -p $(dir $@)
	cd bench/goserver && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off \
	  GOCACHE=$(abspath build/go-cache) go build -o $(abspath $@) .

build/bench/loadgen: bench/loadgen.c bench/bjson.c bench/bjson.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ bench/loadgen.c bench/bjson.c $(LIBS) -lm

build/bench/test_bjson: bench/test_bjson.c bench/bjson.c bench/bjson.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ bench/test_bjson.c bench/bjson.c

build/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(LIBS) -lm

# ---- Installing (docs/INSTALL.md). `make install` puts the release build, the man page, the
# systemd unit, the logrotate snippet, the documentation and (when there is none yet) the
# configuration under DESTDIR/PREFIX; the Debian package (`make deb`, debian/) is built with it.
# A daemon with a section-8 manual goes to sbin. The configuration and logrotate live in /etc
# whatever PREFIX is (the unit and the logrotate snippet name those paths), and `make install`
# never replaces a file there: an existing configuration is the operator's.

.PHONY: install uninstall deb

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/signal-server
SYSCONFDIR ?= /etc
# Debian's packages put units in /lib/systemd/system (Debian 12); systemd also reads
# /usr/local/lib/systemd/system, so a /usr/local install is found too.
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
DOCS    := README.md docs/INSTALL.md docs/CONFIG.md docs/PROTOCOL.md docs/SECURITY.md docs/CLIENT.md

install: build/signal-server
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/signal-server $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 0755 build/signal-server $(DESTDIR)$(SBINDIR)/signal-server
	gzip -9n < packaging/signal-server.8 > $(DESTDIR)$(MANDIR)/man8/signal-server.8.gz
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/signal-server.8.gz
	sed -e 's|/usr/sbin/signal-server|$(SBINDIR)/signal-server|' \
	  -e 's|/etc/signal-server/|$(SYSCONFDIR)/signal-server/|' \
	  -e 's|/usr/share/doc/signal-server/|$(DOCDIR)/|' \
	  packaging/signal-server.service > $(DESTDIR)$(UNITDIR)/signal-server.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/signal-server.service
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	@for f in signal-server/signal-server.toml:packaging/signal-server.toml \
	          logrotate.d/signal-server:packaging/signal-server.logrotate; do \
	  dst=$(DESTDIR)$(SYSCONFDIR)/$${f%%:*}; src=$${f#*:}; \
	  if [ -e "$$dst" ]; then echo "install: kept $$dst (the default is $$src)"; \
	  else echo "install -m 0644 $$src $$dst"; install -m 0644 "$$src" "$$dst"; fi; \
	done

# Leaves the configuration and the log: they are the operator's.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/signal-server $(DESTDIR)$(MANDIR)/man8/signal-server.8.gz \
	  $(DESTDIR)$(UNITDIR)/signal-server.service
	rm -rf $(DESTDIR)$(DOCDIR)

# build/signal-server_VERSION_amd64.deb, built by dpkg-buildpackage from a copy of the source
# files in build/deb-src (so the package's build never sees this tree's build/).
deb: deps
	scripts/make-deb.sh
