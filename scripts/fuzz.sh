#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets in fuzz/ with cargo-fuzz on the stable toolchain
# (`--sanitizer none`: coverage-guided, no ASan — that needs nightly) and runs each for
# $FUZZ_SECONDS (default 30) from its seeds (fuzz/seeds/T) plus the corpus kept in the cache.
# Prints each target's exec count; exits 1 on the first crash, naming the input that caused it.
# Usage: scripts/fuzz.sh [target ...]   (default: every target in fuzz/Cargo.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${ZEKE_CACHE:-$HOME/.cache/zeke-deps}
FUZZ_VERSION=0.13.2
secs=${FUZZ_SECONDS:-30}
export CARGO_TARGET_DIR=${ZEKE_FUZZ_TARGET:-$HOME/.cache/zeke-fuzz/target}
bin="$CACHE/cargo-fuzz-$FUZZ_VERSION/bin"
if [ ! -x "$bin/cargo-fuzz" ]; then
  echo "[fuzz] installing cargo-fuzz $FUZZ_VERSION (crates.io) into $bin"
  cargo install --locked --root "$CACHE/cargo-fuzz-$FUZZ_VERSION" cargo-fuzz --version "$FUZZ_VERSION" >/dev/null
fi
export PATH="$bin:$PATH"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^zeke-fuzz$')
cd fuzz
cargo fuzz build --sanitizer none -O
status=0
for t in "${targets[@]}"; do
  corpus="$HOME/.cache/zeke-fuzz/corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  log=$(mktemp)
  if cargo fuzz run --sanitizer none -O "$t" "$corpus" "seeds/$t" -- \
      -max_total_time="$secs" -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
    echo "[fuzz] $t: ok — ${runs:-no run count} ($(ls "$corpus" | wc -l) corpus inputs)"
  else
    echo "[fuzz] $t: FAILED — last lines:"
    tail -25 "$log"
    echo "[fuzz] reproduce: cd fuzz && cargo fuzz run --sanitizer none -O $t artifacts/$t/<crash file>"
    status=1
  fi
  rm -f "$log"
done
exit $status
