#!/usr/bin/env bash
# The release build: a statically linked binary of at most 12 MiB that runs in an empty chroot.
# Needs root for chroot; without it the chroot step says it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"
bin="target/$target/release/hostler"
size=$(stat -c %s "$bin")
limit=$((12 * 1024 * 1024))
echo "static binary: $bin, $size bytes (limit $limit)"
if [ "$size" -gt "$limit" ]; then
  echo "FAIL: the release binary is over 12 MiB" >&2
  exit 1
fi
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "FAIL: the release binary is dynamically linked" >&2
  ldd "$bin" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: the empty-chroot run needs root"
  exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cp "$bin" "$root/hostler"
chroot "$root" /hostler --db /h.db init
# A script that needs no outside command, run through the whole engine and store.
printf 'let x = captures("load 1.5", "([0-9.]+)"); ok(`parsed ${x[1]}`)\n' > "$root/s.rhai"
chroot "$root" /hostler --db /h.db script add s /s.rhai
out=$(chroot "$root" /hostler --db /h.db run s)
echo "$out"
[ "$out" = "OK: parsed 1.5" ] || { echo "FAIL: unexpected output in the chroot" >&2; exit 1; }
chroot "$root" /hostler --db /h.db history --json >/dev/null
echo "static-check: 1 passed, 0 failed"
