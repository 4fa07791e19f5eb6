# SPDX-License-Identifier: GPL-2.0
#
# Top-level entry points. Kbuild reads ./Kbuild, not this file.
#
#   make            build the module (against the project's guest kernel,
#                   built and cached on first use) and the userland tools
#   make KDIR=/path build the module against another Rust-enabled kernel
#                   tree (LLVM=1 is detected from its .config; pass
#                   RUSTC=... if it was built with another rustc)
#   make test       install, build and run every host and guest test
#   make demo       boot the guest and show writeboost at work
#   make bench      side-by-side benchmark in one guest boot (~20 min):
#                   writeboost vs dm-linear, dm-writecache, dm-cache on a
#                   RAM-disk cache, sustained runs, resume times; tables in
#                   build/bench/report.txt (Documentation/performance.md)
#   make soak       long guest runs (tests/soak/, one boot, ~5 min)
#   make sim        the deterministic crash simulator with more seeds
#                   (SEEDS=N, default 1000; STEPS=N per seed)
#   make crashtest  dm-log-writes crash-point harness in one guest boot
#                   (CRASHPOINTS=N, default 200; see Documentation/testing.md)
#   make install    install the module under /lib/modules/$(KVER)/updates
#                   (+depmod: then `modprobe dm-writeboost`), the tools,
#                   the daemon's systemd unit and the admin guide
#                   (DESTDIR, PREFIX, KVER as usual)
#   make uninstall  remove what make install installed
#   make clean      remove build products (the cached kernel stays)

SHELL := /bin/bash
PREFIX ?= /usr/local
# The kernel release the module is installed for: the one dm-writeboost.ko
# was built against (its vermagic), else the running kernel.
KVER ?= $(or $(shell [ -f dm-writeboost.ko ] && modinfo -F vermagic ./dm-writeboost.ko 2>/dev/null | cut -d' ' -f1),$(shell uname -r))
SBINDIR ?= $(PREFIX)/sbin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/writeboost
# Passed to the module build only when given; RUSTC is for the kernel
# side and must not leak into cargo (the tools use the host toolchain).
ifdef KDIR
export KDIR
endif
ifdef LLVM
export LLVM
endif
ifdef RUSTC
export WB_RUSTC := $(RUSTC)
endif
unexport RUSTC

.PHONY: all setup kernel module tools crashtest-tool test demo bench soak crashtest sim fuzz install uninstall clean

all: module tools

setup:
	@scripts/setup-toolchain.sh

kernel: setup
	@scripts/build-kernel.sh >/dev/null

module: setup
	@scripts/build-module.sh >/dev/null

tools: setup
	cd tools && cargo build --release --workspace --bins --examples
	[ ! -d tests/pattern ] || (cd tests/pattern && cargo build --release)
	[ ! -d tests/crashtest ] || (cd tests/crashtest && cargo build --release)

crashtest-tool: setup
	cd tests/crashtest && cargo build --release

test:
	@scripts/test.sh

demo: module tools
	@scripts/demo.sh

bench: module tools
	@scripts/bench.sh

soak: module tools
	@scripts/soak.sh

crashtest: module crashtest-tool
	@scripts/crashtest.sh

SEEDS ?= 1000
STEPS ?= 20000
sim:
	cd tools && WB_SIM_SEEDS=$(SEEDS) WB_SIM_STEPS=$(STEPS) cargo test --release -p wbformat --test sim -- --nocapture

fuzz:
	@scripts/fuzz-wbformat.sh

install: all
	install -D -m 0644 dm-writeboost.ko $(DESTDIR)/lib/modules/$(KVER)/updates/dm-writeboost.ko
	depmod -a $(if $(DESTDIR),-b $(DESTDIR)) $(KVER)
	for b in tools/target/release/writeboost-*; do \
	    [ -x "$$b" ] && [ -f "$$b" ] && install -D -m 0755 "$$b" $(DESTDIR)$(SBINDIR)/$$(basename $$b); \
	done; true
	mkdir -p build && sed 's|/usr/local/sbin/|$(SBINDIR)/|; s|/usr/local/share/doc/writeboost/|$(DOCDIR)/|' \
	    tools/writeboost-admin/writeboost-daemon.service > build/writeboost-daemon.service
	install -D -m 0644 build/writeboost-daemon.service $(DESTDIR)$(SYSTEMDUNITDIR)/writeboost-daemon.service
	install -D -m 0644 Documentation/admin-guide.md $(DESTDIR)$(DOCDIR)/admin-guide.md
	@echo "installed dm-writeboost.ko for kernel $(KVER): modprobe dm-writeboost"

uninstall:
	rm -f $(DESTDIR)/lib/modules/$(KVER)/updates/dm-writeboost.ko
	[ ! -d $(DESTDIR)/lib/modules/$(KVER) ] || depmod -a $(if $(DESTDIR),-b $(DESTDIR)) $(KVER)
	rm -f $(DESTDIR)$(SBINDIR)/writeboost-* $(DESTDIR)$(SYSTEMDUNITDIR)/writeboost-daemon.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -f *.o *.ko *.mod *.mod.c .*.cmd modules.order Module.symvers rust/*.o rust/.*.cmd rust/wb_shim_generated.rs
	rm -rf build
	cd tools && cargo clean
	[ ! -d tests/pattern ] || (cd tests/pattern && cargo clean)
	[ ! -d tests/crashtest ] || (cd tests/crashtest && cargo clean)
