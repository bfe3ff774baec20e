#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# Tests that need an outside tool fail (instead of skipping) when it is missing, because
# HOSTLER_REQUIRE_PEERS=1 is set here.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
# Real monitoring plugins for nagioslib's tests.
[ -x /usr/lib/nagios/plugins/check_dummy ] || need_pkgs+=(monitoring-plugins-basic)
# Real peers for the remote-session tests: OpenSSH's sshd (and ssh-keygen, ssh-agent from the
# client package), busybox telnetd with /bin/login.
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
[ -x /usr/bin/ssh-agent ] || need_pkgs+=(openssh-client)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
[ -x /bin/login ] || need_pkgs+=(login)
# A real TLS peer (openssl s_server) for the HTTPS test.
[ -x /usr/bin/openssl ] || need_pkgs+=(openssl)
# What the bundled checks run here: ps, free and kill (procps), ping (iputils).
[ -x /usr/bin/ps ] && [ -x /usr/bin/free ] && [ -x /usr/bin/kill ] || need_pkgs+=(procps)
[ -x /usr/bin/ping ] || need_pkgs+=(iputils-ping)
# A real PostgreSQL server: each test starts a throwaway cluster with initdb (as the
# unprivileged postgres user) on a free loopback port.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
# Stock login shells for the session tests besides bash, dash and busybox ash: zsh.
[ -x /usr/bin/zsh ] || need_pkgs+=(zsh)
# A real SMTP server for the smtp channel's tests (plain, STARTTLS with a login).
[ -f /usr/lib/python3/dist-packages/aiosmtpd/__init__.py ] || need_pkgs+=(python3-aiosmtpd)
# A real browser for the web page's test: Debian's Chromium, driven through chromedriver.
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || need_pkgs+=(chromium-driver)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Prometheus's promtool checks /metrics. It is taken out of Debian's prometheus package rather
# than installing it, whose scripts would start a Prometheus server.
promtool_dir="$PWD/target/promtool"
if [ ! -x "$promtool_dir/usr/bin/promtool" ]; then
  rm -rf "$promtool_dir" && mkdir -p "$promtool_dir"
  ( cd "$promtool_dir"
    apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }
    dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb )
fi
export HOSTLER_PROMTOOL="$promtool_dir/usr/bin/promtool"

export HOSTLER_REQUIRE_PEERS=1
# Snapshots are checked, never rewritten, here.
export INSTA_UPDATE=no
cargo test --locked "$@"
