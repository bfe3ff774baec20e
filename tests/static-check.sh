#!/usr/bin/env bash
# The release build: a statically linked binary of at most 14 MiB (12 MiB before the PostgreSQL
# driver; issue 19 allowed 13 with it; issue 31 moves the limit to 14 for round 3's network
# and team work: dependencies, quorum, heartbeats, passive results) that runs in an empty
# chroot, with its code in the order of assets/link-order.txt.
# Needs root for chroot; without it the chroot step says it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# Packed relative relocations (RELR), and identical code folding: rust-lld keeps functions
# with the same code once (mostly generic instances; 83 KB).
# Symbols are stripped here, not by the profile (Cargo.toml says why); build.rs orders the code
# by assets/link-order.txt and, with HOSTLER_LINK_MAP, has the linker write its map.
map="$PWD/target/$target/release/hostler.map"
HOSTLER_LINK_MAP="$map" RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all" cargo build --release --locked --target "$target"
bin="target/$target/release/hostler"
if ! nm "$bin" 2>&1 | grep -q "no symbols"; then
  echo "FAIL: the release binary has its symbols" >&2
  exit 1
fi
# The functions an idle serve runs come first, together (build.rs; BENCHMARKS.md, "Idle memory").
python3 tests/link_order.py check "$map" assets/link-order.txt
# OpenSSL must be built with threads: its locks are no-ops otherwise (see .cargo/config.toml).
conf=$(ls -t target/$target/release/build/openssl-sys-*/out/openssl-build/install/include/openssl/configuration.h | head -1)
if ! grep -q '^# *define OPENSSL_THREADS' "$conf"; then
  echo "FAIL: the vendored OpenSSL was built without threads ($conf)" >&2
  exit 1
fi
echo "OpenSSL: built with threads ($conf)"
size=$(stat -c %s "$bin")
limit=$((14 * 1024 * 1024))
echo "static binary: $bin, $size bytes (limit $limit)"
if [ "$size" -gt "$limit" ]; then
  echo "FAIL: the release binary is over 14 MiB" >&2
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
# The web page from the chroot: the first serve makes the admin (random password from the
# kernel, argon2 hash); a real login replaces it and reaches the dashboard.
wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot "$root" /hostler --db /h.db serve --no-demo --listen "127.0.0.1:$wport" 2> "$root/serve.log" &
serve_pid=$!
for _ in $(seq 100); do grep -q "web page on" "$root/serve.log" 2>/dev/null && break; sleep 0.1; done
pw=$(cat "$root/h.db.admin-password")
python3 - "$wport" "$pw" <<'PY'
import http.cookiejar, re, sys, urllib.parse, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', op.open(base + "/login").read().decode()).group(1)
page = op.open(base + "/login", urllib.parse.urlencode({"csrf_token": token, "username": "admin", "password": sys.argv[2]}).encode()).read().decode()
# The one-time password leads to the page that replaces it, and then to the dashboard.
assert "<h1>Set a new password</h1>" in page, page[:500]
token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
new = "Chroot-admin-pw-1"
page = op.open(base + "/account/password", urllib.parse.urlencode({"csrf_token": token, "password": new, "again": new}).encode()).read().decode()
assert "<h1>Dashboard</h1>" in page, page[:500]
print("web page: set the first admin's password and reached the dashboard served from the chroot")
PY
kill "$serve_pid"; wait "$serve_pid" || true
# The statically linked OpenSSL and libssh2: an SSH handshake (key exchange, host key, SHA-256)
# from inside the empty chroot to a real sshd outside it, pinned by `host trust`.
if [ -x /usr/sbin/sshd ]; then
  sd=$(mktemp -d)
  ssh-keygen -q -t ed25519 -N '' -f "$sd/hk"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p /run/sshd
  /usr/sbin/sshd -D -f /dev/null -o ListenAddress=127.0.0.1 -o "HostKey=$sd/hk" -o PidFile=none -p "$port" &
  sshd_pid=$!
  trap 'kill $sshd_pid 2>/dev/null; rm -rf "$root" "$sd"' EXIT
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  chroot "$root" /hostler --db /h.db host add box --address 127.0.0.1 --port "$port" --user nobody
  out=$(chroot "$root" /hostler --db /h.db host trust box --yes)
  echo "$out"
  want=$(ssh-keygen -lf "$sd/hk.pub" | awk '{print $2}')
  case "$out" in *"$want"*) ;; *) echo "FAIL: host trust in the chroot did not pin $want" >&2; exit 1 ;; esac
  # Many handshakes at once: the static OpenSSL must survive concurrent first use (it did
  # not, once). Every login fails (no credentials), so each run is UNKNOWN: exit 3, not a crash.
  for i in $(seq 1 40); do
    chroot "$root" /hostler --db /h.db host add "b$i" --address 127.0.0.1 --port "$port" --user nobody --tag fan >/dev/null
  done
  printf 'let s = connect(host); ok(s.exec("true").stdout)\n' > "$root/fan.rhai"
  chroot "$root" /hostler --db /h.db script add fan /fan.rhai >/dev/null
  for round in 1 2 3 4 5; do
    set +e
    chroot "$root" /hostler --db /h.db run fan --tag fan --parallel 16 > "$sd/fan.out" 2>/dev/null
    rc=$?
    set -e
    lines=$(wc -l < "$sd/fan.out")
    if [ "$rc" -ne 3 ] || [ "$lines" -ne 40 ]; then
      echo "FAIL: fan-out round $round over 40 SSH hosts exited $rc with $lines lines" >&2
      exit 1
    fi
  done
  echo "fan-out: 5 rounds of 40 concurrent SSH logins, no crash"
else
  echo "SKIPPED: the SSH handshake in the chroot needs /usr/sbin/sshd (tests/run-all.sh installs it)"
fi
echo "static-check: passed"
