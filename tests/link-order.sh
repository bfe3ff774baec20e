#!/usr/bin/env bash
# Writes assets/link-order.txt: the functions an idle `hostler serve` and the demo's checks
# run, which the static release build puts first in its code (build.rs). Run it after a new
# toolchain, new crate versions or a large change to what the daemon runs at rest;
# tests/static-check.sh fails when the order has gone stale. Takes about ten minutes: the
# build with symbols, then two runs under valgrind's callgrind, which counts every function
# that runs (as no sampling profiler can).
#
# The names are the release build's own: Cargo.toml's release profile keeps symbols (its
# strip setting is part of every symbol's hash), and the release RUSTFLAGS strip them with
# `-C strip=symbols` (RUSTFLAGS are not). So this build, the same but unstripped, in a
# target directory of its own, has the release build's names.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v valgrind >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
target=x86_64-unknown-linux-gnu
dir="$PWD/target/link-order"
map="$dir/hostler.map"
CARGO_TARGET_DIR="$dir" HOSTLER_LINK_MAP="$map" \
  RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all" \
  cargo build --release --locked --target "$target"
bin="$dir/$target/release/hostler"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# As serve runs: it starts itself again with this setting unless it is set already.
export GLIBC_TUNABLES=glibc.malloc.tcache_count=0
cg=(valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no --dump-line=no)
# under_callgrind SECONDS NAME ARGS: runs `hostler ARGS --listen ...` (a serve) under callgrind
# for SECONDS (valgrind runs it ~50 times slower), then stops it as systemd would.
under_callgrind() {
  local seconds=$1 name=$2; shift 2
  "${cg[@]}" --callgrind-out-file="$work/$name.cg" "$bin" "$@" --listen "127.0.0.1:$(port)" \
    2> "$work/$name.log" &
  local pid=$!
  sleep "$seconds"
  kill -TERM "$pid"
  wait "$pid" || true
  grep -q "stopped after" "$work/$name.log" || { echo "link-order: $name did not run:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
  echo "link-order: $name: $(grep -c '^fn=' "$work/$name.cg") functions"
}
# Idle: a new database, its first start (the admin password made and hashed), no checks.
"$bin" --db "$work/idle.db" init >/dev/null
under_callgrind 60 idle --db "$work/idle.db" serve --no-demo
# The demo: its two checks run once or twice.
under_callgrind 120 demo --db "$work/demo.db" serve
grep -h '^fn=' "$work"/*.cg | sed 's/^fn=//' | sort -u > "$work/ran.txt"
python3 tests/link_order.py make "$bin" "$map" "$work/ran.txt" assets/link-order.txt
