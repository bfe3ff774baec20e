#!/usr/bin/env bash
# Installs the benchmark peers, builds the release binary and runs every benchmark.
# Usage: bash tests/bench/run.sh [--quick] [--only trivial|expect|idle|fanout|queue|web|history_web|sqlxml]
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=()
command -v expect >/dev/null || pkgs+=(expect)
command -v monit >/dev/null || pkgs+=(monit)
[ -x /usr/lib/nagios/plugins/check_dummy ] || pkgs+=(monitoring-plugins-basic)
[ -x /usr/sbin/sshd ] || pkgs+=(openssh-server)
command -v parallel-ssh >/dev/null || pkgs+=(pssh)
command -v wrk >/dev/null || pkgs+=(wrk)
command -v curl >/dev/null || pkgs+=(curl)
[ -x /usr/sbin/nginx ] || pkgs+=(nginx-light)
if [ ${#pkgs[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
python3 -c "import pexpect" 2>/dev/null || python3 -m pip install -q pexpect
# The release artifact: static, as shipped.
RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all" cargo build --release --locked --target x86_64-unknown-linux-gnu
python3 tests/bench/bench.py target/x86_64-unknown-linux-gnu/release/hostler "$@"
