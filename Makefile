# SPDX-License-Identifier: GPL-2.0
#
# hmmgpu: the two commands are `make run` and `make check`. Every target first
# installs what is missing (scripts/deps.sh), then builds what is stale.
#
#   make run      build, boot a QEMU guest, load hmmgpu, run the demonstration
#   make check    build, boot, run KUnit and every IGT test; "N passed, N failed"
#   make check-kasan  the same guest run on the KASAN kernel (clang, KASAN, UBSAN)
#   make ci       what CI runs (.ci/run): make check, then make check-kasan
#   make kernel   build the kernel and modules only (cached outside the clone)
#   make igt      build the IGT tests and the demonstration only
#   make selftests  build the kernel's own selftests that make check runs (hmm-tests)
#   make soak     build, boot, run the data-integrity soak SOAK_SECONDS per VM mode
#   make fuzz     build, boot, run the ioctl fuzzer FUZZ_SECONDS (FUZZ_SEED, FUZZ_JOBS,
#                 FUZZ_KERNEL=kcov or kasan for coverage); reproducers go to out/fuzz/
#   make bench    build a kernel without debugging options, boot, measure the
#                 mirroring against the kernel's references (BENCH_REPS, BENCH_SIZES)
#   make rustfmt  format the project's Rust files
#   make clippy   build the Rust code with CLIPPY=1
#   make clean    remove out/ (the kernel cache stays: see HMMGPU_CACHE in README.md)

OUT := $(CURDIR)/out
BIN := $(OUT)/bin
CHECK_TIMEOUT ?= 1800
CHECK_KASAN_TIMEOUT ?= 3000

.PHONY: all run check check-kasan ci soak fuzz bench deps kernel igt selftests demo rustfmt rustfmtcheck clippy clean

all: check

deps:
	@scripts/deps.sh

kernel: deps
	@scripts/kernel.sh build

igt: deps
	@$(MAKE) -s -C igt-tests O=$(OUT)/igt
	@mkdir -p $(BIN)/igt
	@find $(OUT)/igt -maxdepth 1 -type f -perm -u+x -exec cp -u {} $(BIN)/igt/ \;
	@$(MAKE) -s -C tools/hmmgpu O=$(BIN)

selftests: kernel
	@scripts/selftests.sh $(BIN)/selftests

demo: igt

run: kernel igt
	@scripts/vm.sh -o $(OUT)/run -b $(BIN) -- sh /opt/hmmgpu/run.sh

check: kernel igt selftests
	@scripts/check.sh $(OUT) $(BIN) $(CHECK_TIMEOUT)

# The KASAN lane: the kernel of kernel/kasan.config (HMMGPU_FLAVOUR=kasan, built
# with clang 19 in its own build directory), the same guest run as make check
# (the host-side tests are make check's). Its output is under out/kasan/.
# hmm-tests is built from the shared source tree, so the gcc kernel is not needed.
check-kasan: deps igt
	@HMMGPU_FLAVOUR=kasan scripts/kernel.sh build
	@scripts/selftests.sh $(BIN)/selftests
	@HMMGPU_FLAVOUR=kasan scripts/check.sh --guest-only $(OUT)/kasan $(BIN) $(CHECK_KASAN_TIMEOUT)

# Both lanes, as CI runs them; the second runs even when the first failed.
ci:
	@st=0; $(MAKE) -s check || st=1; $(MAKE) -s check-kasan || st=1; exit $$st

# SOAK_SECONDS per VM mode (default 600), SOAK_SEED (default: the test picks one
# and prints it). The guest's limit: three modes, plus the boot and the final checks.
soak: kernel igt
	@s=$(or $(SOAK_SECONDS),600); \
	scripts/vm.sh -t $$((3 * s + 600)) -o $(OUT)/soak -b $(BIN) -- \
		sh /opt/hmmgpu/soak.sh $$s $(SOAK_SEED) && echo "soak: passed" || \
		{ echo "soak: FAILED; output and kernel log in $(OUT)/soak"; exit 1; }

# FUZZ_SECONDS (default 600), FUZZ_SEED (default: the fuzzer picks one and
# prints it), FUZZ_KERNEL: test (default), kcov (the test kernel with KCOV, its
# own build directory: coverage feedback) or kasan (the KASAN lane's kernel,
# which has KCOV too), FUZZ_JOBS: how many runs side by side (default 1; 2 keeps
# both guest CPUs busy). Only the fuzzer is built.
FUZZ_KERNEL ?= test
fuzz: deps
	@HMMGPU_FLAVOUR=$(FUZZ_KERNEL) scripts/kernel.sh build
	@$(MAKE) -s -C tools/hmmgpu O=$(BIN) $(BIN)/hmmgpu_fuzz
	@HMMGPU_FLAVOUR=$(FUZZ_KERNEL) scripts/fuzz.sh $(OUT) $(BIN) $(or $(FUZZ_SECONDS),600) "$(FUZZ_SEED)" $(or $(FUZZ_JOBS),1)

# The bench kernel (HMMGPU_FLAVOUR=bench) has its own build directory; the
# table is printed last, the figures are in out/bench/results.json.
BENCH_REPS ?= 5
BENCH_SIZES ?= 16 256
bench: deps igt
	@HMMGPU_FLAVOUR=bench scripts/kernel.sh build
	@BENCH_REPS='$(BENCH_REPS)' BENCH_SIZES='$(BENCH_SIZES)' scripts/bench.sh $(OUT) $(BIN)

rustfmt rustfmtcheck: deps
	@scripts/rustfmt.sh $(if $(filter rustfmtcheck,$@),--check)

clippy: deps
	@HMMGPU_CLIPPY=1 scripts/kernel.sh build

clean:
	rm -rf $(OUT)
	@$(MAKE) -s -C igt-tests clean
