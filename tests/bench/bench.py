#!/usr/bin/env python3
"""hostler's benchmarks, each run side by side with its peer in one run; medians and ratios.

Usage: python3 tests/bench/bench.py [path/to/hostler] [--quick] [--only trivial|expect|idle|fanout|queue|web|history_web|sqlxml|ping|apply|apply_latency|checks|mute|keepalive] [--rate=N] [--runners=bundled,plugin,Icinga] [--slots=N] [--window=S] [--nodes=1,2,3] [--pg-statements] [--pg-connections=N] [--mute=N] [--probe-every=N]
history_web soaks a database first, or serves a copy of HOSTLER_SOAK_DB (kept by an earlier
`cargo bench --bench history` with HOSTLER_SOAK_KEEP).
Run through tests/bench/run.sh, which installs the peers (pexpect, Tcl expect,
monitoring-plugins, Monit, OpenSSH's sshd, parallel-ssh, wrk) and builds the release binary.
"""
import glob
import json
import os
import re
import urllib.request
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HOSTLER = os.path.abspath(next((a for a in sys.argv[1:] if not a.startswith("--") and a not in ("trivial", "expect", "idle", "fanout", "queue", "web", "sqlxml", "ping", "apply", "apply_latency", "checks", "mute", "keepalive")), "target/release/hostler"))
QUICK = "--quick" in sys.argv
# --only NAME runs one benchmark: trivial, expect, idle, fanout, queue, web or sqlxml.
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None


def wanted(name):
    return ONLY is None or ONLY == name
SIZE = 56 * 1024 * 1024
GEN = f"head -c {SIZE} /dev/zero | tr '\\0' a; echo END_MARKER"


def median_time(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return r


def report(title, rows, base):
    print(f"\n## {title}\n")
    print("| runner | median | ratio to " + base + " |")
    print("| --- | ---: | ---: |")
    ref = dict(rows)[base]
    for name, med in rows:
        print(f"| {name} | {med * 1000:.1f} ms | {med / ref:.2f}x |")


def bench_trivial_run(work):
    env = dict(os.environ, HOSTLER_DB=os.path.join(work, "bench.db"))
    run([HOSTLER, "init"], env=env, check=True)
    p = subprocess.run([HOSTLER, "script", "add", "trivial", "-"], input='ok("fine")', text=True, env=env, capture_output=True, check=True)
    n = 20 if QUICK else 100
    rows = []
    med, _ = median_time(lambda: subprocess.run([HOSTLER, "run", "trivial"], env=env, capture_output=True, check=True), n)
    rows.append(("hostler run trivial (records the run)", med))
    plugin = "/usr/lib/nagios/plugins/check_dummy"
    if os.path.exists(plugin):
        med, _ = median_time(lambda: subprocess.run([plugin, "0", "fine"], capture_output=True, check=True), n)
        rows.append(("check_dummy 0 (a C monitoring plugin)", med))
    med, _ = median_time(lambda: subprocess.run(["python3", "-c", "print('OK: fine')"], capture_output=True, check=True), n)
    rows.append(("python3 -c print (interpreter start)", med))
    report(f"hostler run of a trivial script ({n} runs each; goal: at most 10 ms)", rows, rows[0][0])


def bare_read():
    p = subprocess.Popen(["sh", "-c", GEN], stdout=subprocess.PIPE)
    fd = p.stdout.fileno()
    total = 0
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        total += len(b)
    p.wait()
    assert total == SIZE + len("END_MARKER\n"), total


def cat_read():
    subprocess.run(["sh", "-c", f"({GEN}) | cat > /dev/null"], check=True)


def pexpect_read(maxread=2000):
    import pexpect
    c = pexpect.spawn("sh", ["-c", GEN], timeout=120, encoding=None, maxread=maxread)
    c.expect_exact(b"END_MARKER")
    c.close()


def tcl_expect_read():
    script = f"set timeout 120; spawn -noecho sh -c {{{GEN}}}; expect -exact END_MARKER {{}} timeout {{exit 1}}"
    subprocess.run(["expect", "-c", script], check=True, capture_output=True)


def bench_expect(work):
    env = dict(os.environ, HOSTLER_DB=os.path.join(work, "expect.db"))
    cfg = os.path.join(work, "bench.toml")
    with open(cfg, "w") as f:
        f.write('[sandbox]\ntimeout = 120.0\nmax_string_size = 134217728\nallowed_commands = ["sh"]\n')
    run([HOSTLER, "init"], env=env, check=True)
    gen = GEN.replace("\\", "\\\\").replace('"', '\\"')
    for name, opts in [("read_pipe", "#{}"), ("read_pty", "#{pty: true}")]:
        src = f'let s = spawn("sh", ["-c", "{gen}"], {opts}); let got = s.read_until("END_MARKER", 120); ok(`${{got.bytes}}`)'
        subprocess.run([HOSTLER, "script", "add", name, "-"], input=src, text=True, env=env, capture_output=True, check=True)

    def hostler(name):
        def go():
            r = subprocess.run([HOSTLER, "--config", cfg, "run", name], env=env, capture_output=True, text=True)
            assert r.returncode == 0 and str(SIZE + 10) in r.stdout, r.stdout + r.stderr
        return go

    n = 3 if QUICK else 7
    rows = [
        ("bare pipe read (Python os.read, 1 MiB)", median_time(bare_read, n)[0]),
        ("cat > /dev/null", median_time(cat_read, n)[0]),
        ("hostler read_until, pipes", median_time(hostler("read_pipe"), n)[0]),
        ("hostler read_until, pty", median_time(hostler("read_pty"), n)[0]),
    ]
    try:
        import pexpect  # noqa: F401
        rows.append(("pexpect expect_exact (pty, default maxread 2000)", median_time(pexpect_read, n)[0]))
        rows.append(("pexpect expect_exact (pty, maxread 65536)", median_time(lambda: pexpect_read(65536), n)[0]))
    except ImportError:
        print("SKIPPED pexpect: not installed (pip install pexpect)")
    if shutil.which("expect"):
        rows.append(("Tcl expect -exact (pty)", median_time(tcl_expect_read, n)[0]))
    else:
        print("SKIPPED Tcl expect: not installed (apt-get install expect)")
    report(f"read_until of a marker after 56 MiB from a local process ({n} runs each; goal: within 3x of a bare pipe read)", rows, rows[0][0])


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid):
    status = open(f"/proc/{pid}/status").read()
    rollup = open(f"/proc/{pid}/smaps_rollup").read()

    def field(text, name):
        for line in text.splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        return 0

    return field(status, "VmRSS"), field(rollup, "Pss"), field(status, "RssAnon")


def idle(cmd, env=None, settle=3.0):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)
        if p.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited early with {p.returncode}")
        return memory(p.pid)
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def bench_idle_memory(work):
    rows = []
    env = dict(os.environ, HOSTLER_DB=os.path.join(work, "idle.db"))
    run([HOSTLER, "init"], env=env, check=True)
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    rows.append(("hostler serve (idle, empty queue, web page on)", idle([HOSTLER, "serve", "--no-demo"] + listen, env=env)))
    rows.append(("hostler serve (demo: 2 checks every 60 s, web page on)", idle([HOSTLER, "--db", os.path.join(work, "demo.db"), "serve"] + listen, env=env)))
    if shutil.which("monit"):
        rc = os.path.join(work, "monitrc")
        with open(rc, "w") as f:
            f.write(f"set daemon 30\nset pidfile {work}/monit.pid\nset idfile {work}/monit.id\nset statefile {work}/monit.state\n"
                    f"set httpd port {free_port()} and use address 127.0.0.1\n    allow localhost\n"
                    f"check filesystem root with path /\n  if space usage > 95% then alert\n")
        os.chmod(rc, 0o600)
        rows.append(("Monit 5 (idle, web page on, one check)", idle(["monit", "-I", "-c", rc])))
    else:
        print("SKIPPED Monit: not installed (apt-get install monit)")
    print("\n## Idle memory (goal: hostler serve at most 8 MB RSS)\n")
    print("| process | RSS | PSS | anonymous RSS |")
    print("| --- | ---: | ---: | ---: |")
    for name, (rss, pss, anon) in rows:
        print(f"| {name} | {rss / 1024:.1f} MB | {pss / 1024:.1f} MB | {anon / 1024:.1f} MB |")


SSH_USER = "hostlertest"


def start_sshd(work):
    """A loopback OpenSSH sshd with key logins for the test account (as in tests/it/peers.rs)."""
    d = os.path.join(work, "sshd")
    os.makedirs(d, exist_ok=True)
    # sshd reads authorized_keys as the user: every folder on the way must be searchable.
    os.chmod(work, 0o755)
    os.chmod(d, 0o755)
    for key in ("host_key", "client_key"):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, key)], check=True)
    auth = os.path.join(d, "authorized_keys")
    shutil.copy(os.path.join(d, "client_key.pub"), auth)
    os.chmod(auth, 0o644)
    if run(["id", SSH_USER]).returncode != 0:
        run(["useradd", "-m", "-s", "/bin/sh", SSH_USER], check=True)
    cfg = os.path.join(d, "sshd_config")
    with open(cfg, "w") as f:
        f.write(f"ListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile none\nUsePAM yes\n"
                f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
                f"AuthorizedKeysFile {auth}\nAllowUsers {SSH_USER}\nStrictModes no\nLogLevel ERROR\n"
                f"MaxStartups 200\n")
    os.makedirs("/run/sshd", exist_ok=True)
    port = free_port()
    p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", cfg, "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, port, os.path.join(d, "client_key")


def timed(cmd, env=None):
    """Wall time and the CPU (user, system) of `cmd` and everything it waited for."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, r


def bench_fanout(work):
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd") or not shutil.which("parallel-ssh"):
        print("\nSKIPPED fan-out: needs root, openssh-server and pssh (tests/bench/run.sh installs them)")
        return
    n_hosts = 100
    sshd, port, key = start_sshd(work)
    try:
        env = dict(os.environ, HOSTLER_DB=os.path.join(work, "fan.db"))
        run([HOSTLER, "init"], env=env, check=True)
        for i in range(n_hosts):
            run([HOSTLER, "host", "add", f"b{i:03}", "--address", "127.0.0.1", "--port", str(port),
                 "--user", SSH_USER, "--key", key, "--tag", "bench"], env=env, check=True)
        subprocess.run([HOSTLER, "script", "add", "up", "-"], env=env, check=True, capture_output=True, text=True,
                       input='let s = connect(host); let r = s.exec("uptime"); if r.code == 0 { ok(r.stdout) } else { critical(r.stderr) }')
        subprocess.run([HOSTLER, "script", "add", "up_shell", "-"], env=env, check=True, capture_output=True, text=True,
                       input='import "loginlib" as l; let s = l::login(host); ok(s.cmd("uptime"))')
        hosts = os.path.join(work, "pssh_hosts")
        with open(hosts, "w") as f:
            f.write("".join(f"{SSH_USER}@127.0.0.1:{port}\n" for _ in range(n_hosts)))
        pssh = ["parallel-ssh", "-h", hosts, "-p", "32", "-t", "60",
                "-x", f"-i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
                "uptime"]

        def ok_lines(r, word):
            return sum(1 for line in r.stdout.splitlines() if word in line)

        reps = 1 if QUICK else 3
        rows = []
        for name, cmd, word in [
            ("hostler run up --tag bench --parallel 32 (exec)", [HOSTLER, "run", "up", "--tag", "bench", "--parallel", "32"], " OK: "),
            ("hostler run up_shell --tag bench --parallel 32 (loginlib, pty shell, cmd)", [HOSTLER, "run", "up_shell", "--tag", "bench", "--parallel", "32"], " OK: "),
            ("parallel-ssh -p 32 uptime", pssh, "[SUCCESS]"),
        ]:
            samples = []
            for _ in range(reps):
                wall, user, sys_, r = timed(cmd, env=env)
                good = ok_lines(r, word)
                if good != n_hosts:
                    print(f"WARNING: {name}: {good}/{n_hosts} succeeded; stderr: {r.stderr[-300:]}")
                samples.append((wall, user, sys_))
            rows.append((name, [statistics.median(x) for x in zip(*samples)]))
        print(f"\n## Fan-out: uptime on {n_hosts} SSH targets (one loopback sshd), 32 at once, median of {reps}\n")
        print("| runner | wall | user CPU | system CPU | wall ratio | user CPU ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        ref = rows[-1][1]
        for name, (wall, user, sys_) in rows:
            print(f"| {name} | {wall:.2f} s | {user:.2f} s | {sys_:.2f} s | {wall / ref[0]:.2f}x | {user / max(ref[1], 1e-9):.2f}x |")

        rounds = 3 if QUICK else 10
        rep_rows = []
        wall, user, sys_, r = timed([HOSTLER, "run", "up", "--tag", "bench", "--parallel", "32", "--repeat", str(rounds)], env=env)
        rep_rows.append((f"hostler run up --repeat {rounds} (kept sessions, exec)", wall, user, sys_, ok_lines(r, " OK: ")))
        wall, user, sys_, r = timed([HOSTLER, "run", "up_shell", "--tag", "bench", "--parallel", "32", "--repeat", str(rounds)], env=env)
        rep_rows.append((f"hostler run up_shell --repeat {rounds} (kept shells, cmd)", wall, user, sys_, ok_lines(r, " OK: ")))
        t = [0.0, 0.0, 0.0]
        good = 0
        for _ in range(rounds):
            w_, u_, s_, r = timed(pssh)
            t = [t[0] + w_, t[1] + u_, t[2] + s_]
            good += ok_lines(r, "[SUCCESS]")
        rep_rows.append((f"parallel-ssh, {rounds} rounds", t[0], t[1], t[2], good))
        print(f"\n## Repeated: the same check, {rounds} rounds on {n_hosts} hosts (goal: hostler at least 10x faster)\n")
        print("| runner | wall | user CPU | system CPU | succeeded | parallel-ssh's wall / this |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        ref = rep_rows[-1][1]
        for name, wall, user, sys_, good in rep_rows:
            print(f"| {name} | {wall:.2f} s | {user:.2f} s | {sys_:.2f} s | {good}/{rounds * n_hosts} | {ref / wall:.1f}x |")
    finally:
        sshd.terminate()
        sshd.wait()


def seed_web(db, n_hosts, n_runs):
    """n_hosts hosts and n_runs runs (five checks per host, statuses mixed), written straight
    into the schema hostler init made."""
    import sqlite3
    now = int(time.time() * 1000)
    c = sqlite3.connect(db)
    c.executemany("INSERT INTO hosts (name, address, method, tags, created_at, updated_at) VALUES (?, '127.0.0.1', 'local', 'bench', ?, ?)",
                  [(f"host{i:04d}", now, now) for i in range(n_hosts)])
    checks = ["check_disk", "check_load", "check_http", "check_ntp", "check_users"]
    statuses = ["ok"] * 17 + ["warning", "critical", "unknown"]
    # Each (host, check) has its key (schema 5), as hostler's first run of it would make.
    c.executemany("INSERT INTO run_keys (id, host, script) VALUES (?, ?, ?)",
                  [(h * len(checks) + k + 1, f"host{h:04d}", checks[k]) for h in range(n_hosts) for k in range(len(checks))])
    rows = []
    for i in range(n_runs):
        h, k = i % n_hosts, (i // n_hosts) % len(checks)
        st = statuses[i % len(statuses)]
        t = now - (n_runs - i) * 1000
        rows.append((h * len(checks) + k + 1, st, f"{st.upper()}: {checks[k]} said something {i}", t - 120, t))
    c.executemany("INSERT INTO runs (key_id, status, message, started_at, finished_at) VALUES (?, ?, ?, ?, ?)", rows)
    c.commit()
    c.close()


def web_login(base, user, password):
    """Logs in like a browser: GET the form for its token and cookie, POST, keep the session."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "username": user, "password": password}).encode()
    opener.open(base + "/login", body).read()
    return next(c.value for c in jar if c.name == "hostler_session")


def wrk(url, header, seconds, conns=16):
    r = run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-H", header, url])
    out = r.stdout
    rps = float(next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")))
    def ms(v):
        return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
    p = {l.split()[0]: ms(l.split()[1]) for l in out.splitlines() if l.strip().startswith(("50%", "99%"))}
    non2xx = next((int(l.split()[-1]) for l in out.splitlines() if "Non-2xx" in l), 0)
    return rps, p.get("50%"), p.get("99%"), non2xx, out


def serve(env):
    """Starts `hostler serve` on a free port and waits for /healthz; answers the process and
    the base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    p = subprocess.Popen([HOSTLER, "serve", "--no-demo", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz").read()
            return p, base
        except OSError:
            time.sleep(0.1)
    p.terminate()
    raise RuntimeError("hostler serve never answered /healthz")


def serve_logged_in(env):
    """Adds the web user `bench`, starts `hostler serve` with its page on a free port and logs
    in; answers the process, the base URL and the session cookie header."""
    subprocess.run([HOSTLER, "user", "add", "bench", "--password-stdin"], input="Bench-pass-1234\n",
                   env=env, capture_output=True, text=True, check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    p = subprocess.Popen([HOSTLER, "serve", "--no-demo", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cookie = None
    for _ in range(100):
        try:
            cookie = web_login(base, "bench", "Bench-pass-1234")
            break
        except OSError:
            time.sleep(0.1)
    if cookie is None:
        p.terminate()
        raise RuntimeError("hostler serve's page never answered the login")
    return p, base, f"Cookie: hostler_session={cookie}"


def bench_web(work):
    """The dashboard under wrk (16 connections over loopback) with 1,000 hosts and 100,000
    runs; Monit's own status page (one check) under the same load, for reference."""
    if not shutil.which("wrk"):
        print("SKIPPED web: wrk not installed (apt-get install wrk)")
        return
    n_hosts, n_runs = (1000, 100_000)
    seconds = 5 if QUICK else 10
    db = os.path.join(work, "web.db")
    env = dict(os.environ, HOSTLER_DB=db)
    run([HOSTLER, "init"], env=env, check=True)
    seed_web(db, n_hosts, n_runs)
    p, base, header = serve_logged_in(env)
    rows = []
    try:
        size = len(subprocess.run(["curl", "-s", "-H", header, base + "/"], capture_output=True).stdout) if shutil.which("curl") else 0
        wrk(base + "/", header, 2)  # warm-up
        rss0 = memory(p.pid)[0]
        results = [wrk(base + "/", header, seconds) for _ in range(3)]
        rss1 = memory(p.pid)[0]
        rps = statistics.median(x[0] for x in results)
        p50 = statistics.median(x[1] for x in results)
        p99 = statistics.median(x[2] for x in results)
        bad = sum(x[3] for x in results)
        rows.append((f"hostler dashboard ({n_hosts} hosts, {n_runs} runs, {size // 1024} KiB page)", rps, p50, p99, bad))
        api = wrk(base + "/api/runs?limit=50", header, seconds)
        rows.append(("hostler /api/runs?limit=50", api[0], api[1], api[2], api[3]))
        health = wrk(base + "/healthz", "X-Nothing: 1", seconds)
        rows.append(("hostler /healthz (no login)", health[0], health[1], health[2], health[3]))
    finally:
        p.terminate()
        p.wait(10)
    if shutil.which("monit"):
        mport = free_port()
        rc = os.path.join(work, "monitrc-web")
        with open(rc, "w") as f:
            f.write(f"set daemon 30\nset pidfile {work}/monitw.pid\nset idfile {work}/monitw.id\nset statefile {work}/monitw.state\n"
                    f"set httpd port {mport} and use address 127.0.0.1\n    allow bench:bench\n"
                    f"check filesystem root with path /\n  if space usage > 95% then alert\n")
        os.chmod(rc, 0o600)
        m = subprocess.Popen(["monit", "-I", "-c", rc], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
            res = wrk(f"http://127.0.0.1:{mport}/", "Authorization: Basic YmVuY2g6YmVuY2g=", seconds)
            rows.append(("Monit 5 status page (1 check)", res[0], res[1], res[2], res[3]))
        finally:
            m.terminate()
            m.wait(10)
    else:
        print("SKIPPED Monit: not installed (apt-get install monit)")
    print(f"\n## Web page under wrk (16 connections, {seconds} s, median of 3 for the dashboard; goal >= 1,000 req/s, p99 < 50 ms, RSS growth <= 10 MB)\n")
    print("| page | requests/s | p50 | p99 | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rps, p50, p99, bad in rows:
        print(f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    print(f"\nhostler RSS: {rss0 / 1024:.1f} MB before the measured runs, {rss1 / 1024:.1f} MB after: growth {(rss1 - rss0) / 1024:.1f} MB")


def hold_connections(port, n, per_addr=50):
    """Opens n connections to 127.0.0.1:port, at most per_addr from each of as many loopback
    source addresses, sends one GET /healthz on each and reads its answer: n kept-alive
    connections, idle from then on. Answers the sockets and how many answered 200."""
    import socket
    socks = []
    req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for i in range(n):
        a = i // per_addr
        s = socket.socket()
        s.bind((f"127.0.{1 + a // 250}.{2 + a % 250}", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        socks.append(s)
    return socks, answered(socks)


def answered(socks):
    ok = 0
    for s in socks:
        s.settimeout(5)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                ok += 1
        except OSError:
            pass
    return ok


def still_open(socks):
    """Sends one more request on each connection: how many answer 200 (were still open)."""
    req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for s in socks:
        try:
            s.sendall(req)
        except OSError:
            pass
    return answered(socks)


def keepalive_run(name, port, pid_rss, n, seconds):
    """One runner: RSS before, n idle kept-alive connections held, /healthz under wrk meanwhile
    (and before, for the same runner without them), RSS with them, and how many survived."""
    before = wrk(f"http://127.0.0.1:{port}/healthz", "X-Nothing: 1", seconds)
    rss0 = pid_rss()
    t = time.perf_counter()
    socks, ok = hold_connections(port, n)
    opened = time.perf_counter() - t
    rss1 = pid_rss()
    during = wrk(f"http://127.0.0.1:{port}/healthz", "X-Nothing: 1", seconds)
    rss2 = pid_rss()
    alive = still_open(socks)
    for s in socks:
        s.close()
    return (name, ok, opened, rss0, max(rss1, rss2), before, during, alive)


def bench_keepalive(work):
    """10,000 idle kept-alive connections (goal: RSS growth at most 100 MB, /healthz p99 under
    10 ms meanwhile), hostler beside nginx (one worker) holding the same."""
    import resource
    if not shutil.which("wrk"):
        print("SKIPPED keepalive: wrk not installed (apt-get install wrk)")
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 2000 if QUICK else 10_000
    if hard < n + 1000:
        print(f"SKIPPED keepalive: the open-files limit ({hard}) is below {n + 1000}")
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    seconds = 3
    db = os.path.join(work, "keepalive.db")
    env = dict(os.environ, HOSTLER_DB=db)
    run([HOSTLER, "init"], env=env, check=True)
    rows = []
    p, base = serve(env)
    try:
        port = int(base.rsplit(":", 1)[1])
        rows.append(keepalive_run("hostler serve", port, lambda: memory_rss(p.pid), n, seconds))
    finally:
        p.terminate()
        p.wait(10)
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx:
        port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"daemon off;\nworker_processes 1;\nworker_rlimit_nofile {hard};\npid {work}/nginx.pid;\n"
                    f"error_log {work}/nginx-error.log;\nevents {{ worker_connections {2 * n}; }}\n"
                    f"http {{ access_log off; keepalive_timeout 75s; keepalive_requests 100000;\n"
                    f"  client_body_temp_path {work}/ngx-body; proxy_temp_path {work}/ngx-proxy;\n"
                    f"  fastcgi_temp_path {work}/ngx-fcgi; uwsgi_temp_path {work}/ngx-uwsgi; scgi_temp_path {work}/ngx-scgi;\n"
                    f"  server {{ listen 127.0.0.1:{port}; location /healthz {{ return 200 \"ok\\n\"; }} }} }}\n")
        m = subprocess.Popen([nginx, "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            time.sleep(1)
            rows.append(keepalive_run("nginx 1.22 (one worker, `return 200`)", port,
                                      lambda: tree_rss(m.pid, {"nginx"}), n, seconds))
        finally:
            stop_group(m)
    else:
        print("SKIPPED nginx: not installed (apt-get install nginx-light)")
    print(f"\n## {n:,} idle kept-alive connections (goal: RSS growth at most 100 MB, /healthz p99 under 10 ms meanwhile)\n")
    print(f"Each connection sent one GET /healthz, read its answer and stayed open ({n // 50} loopback source addresses, 50 each);"
          f" /healthz under wrk (16 connections, {seconds} s) before and while they are held.\n")
    print("| runner | answered | opened in | RSS before | RSS with them | growth | per connection | /healthz req/s before / with | p99 before / with | still open after |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, ok, opened, rss0, rss1, before, during, alive in rows:
        print(f"| {name} | {ok:,} | {opened:.1f} s | {rss0 / 1024:.1f} MB | {rss1 / 1024:.1f} MB | {(rss1 - rss0) / 1024:.1f} MB"
              f" | {(rss1 - rss0) * 1024 / max(ok, 1) / 1024:.1f} KB | {before[0]:,.0f} / {during[0]:,.0f}"
              f" | {before[2]:.2f} / {during[2]:.2f} ms | {alive:,} |")


def bench_ping(work):
    """Heartbeat pings under wrk (16 connections): 2,000 heartbeats, each request a ping of one
    of them in turn (a Lua script), beside /healthz in the same run. (2,000: at 10,000 pings/s
    each then pings 5 times a second, under the 20 a second one token may.)"""
    if not shutil.which("wrk"):
        print("SKIPPED ping: wrk not installed (apt-get install wrk)")
        return
    seconds = 5 if QUICK else 10
    db = os.path.join(work, "ping.db")
    env = dict(os.environ, HOSTLER_DB=db)
    run([HOSTLER, "init"], env=env, check=True)
    paths = []
    for i in range(2000):
        r = run([HOSTLER, "heartbeat", "add", f"job{i}", "--every", "1d", "--json"], env=env, check=True)
        paths.append("/ping/" + json.loads(r.stdout)["url"].rsplit("/", 1)[1])
    lua = os.path.join(work, "ping.lua")
    with open(lua, "w") as f:
        f.write("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
                "i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")
    p, base = serve(env)
    rows = []
    try:
        runs = []
        for _ in range(3):
            r = run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", lua, base + "/"])
            out = r.stdout
            rps = float(next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")))
            def ms(v):
                return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
            lat = {l.split()[0]: ms(l.split()[1]) for l in out.splitlines() if l.strip().startswith(("50%", "99%"))}
            bad = next((int(l.split()[-1]) for l in out.splitlines() if "Non-2xx" in l), 0)
            runs.append((rps, lat.get("50%"), lat.get("99%"), bad))
        rows.append(("hostler /ping/TOKEN (2,000 heartbeats in turn; each a run recorded on SQLite)",
                     statistics.median(x[0] for x in runs), statistics.median(x[1] for x in runs),
                     statistics.median(x[2] for x in runs), sum(x[3] for x in runs)))
        health = wrk(base + "/healthz", "X-Nothing: 1", seconds)
        rows.append(("hostler /healthz, same run", health[0], health[1], health[2], health[3]))
    finally:
        p.terminate()
        p.wait(10)
    print(f"\n## Heartbeat pings under wrk (16 connections, {seconds} s, median of 3; goal >= 10,000 pings/s, p99 < 50 ms)\n")
    print("| endpoint | requests/s | p50 | p99 | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rps, p50, p99, bad in rows:
        print(f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")


def bench_apply(work):
    """hostler apply of a site file with 10,000 hosts and 50,000 checks (five [[check]] blocks
    of 10,000 hosts each) on SQLite: the first apply, a second (no change), one with a changed
    interval (10,000 checks changed in place); beside `hostler host add` and `hostler schedule`
    looped, timed over 200 of each and scaled to the same 60,000 objects."""
    n_hosts = 1000 if QUICK else 10000
    hosts = [f"h{i:05}" for i in range(n_hosts)]
    parts = [f'[[host]]\nname = "{h}"\naddress = "127.0.0.1"\nmethod = "local"\ntags = ["t{i % 10}"]\n'
             for i, h in enumerate(hosts)]
    for c in range(5):
        parts.append(f'[[check]]\nscript = "check_ping"\nname = "c{c}"\nevery = "{c + 1}m"\nhosts = ['
                     + ", ".join(f'"{h}"' for h in hosts) + "]\n")
    site = os.path.join(work, "site.toml")
    with open(site, "w") as f:
        f.write("\n".join(parts))
    env = dict(os.environ, HOSTLER_DB=os.path.join(work, "a.db"))
    run([HOSTLER, "init"], env=env, check=True)
    def timed(args, e):
        t = time.perf_counter()
        r = run(args, env=e)
        if r.returncode != 0:
            raise SystemExit(f"{args}: {r.stderr}")
        return time.perf_counter() - t
    first = timed([HOSTLER, "apply", site, "--prune"], env)
    again = timed([HOSTLER, "apply", site], env)
    with open(site) as f:
        text = f.read().replace('every = "1m"', 'every = "30s"', 1)
    with open(site, "w") as f:
        f.write(text)
    changed = timed([HOSTLER, "apply", site], env)
    env2 = dict(os.environ, HOSTLER_DB=os.path.join(work, "b.db"))
    run([HOSTLER, "init"], env=env2, check=True)
    sample = 200
    t_hosts = sum(timed([HOSTLER, "host", "add", f"h{i}", "--address", "127.0.0.1", "--method", "local"], env2)
                  for i in range(sample))
    t_checks = sum(timed([HOSTLER, "schedule", "check_ping", "--host", f"h{i}", "--every", "1m", "--name", "c0"], env2)
                   for i in range(sample))
    loop = t_hosts / sample * n_hosts + t_checks / sample * n_hosts * 5
    print(f"\n## Configuration as code: {n_hosts:,} hosts and {5 * n_hosts:,} checks (goal: under 10 s; a re-apply with a change under 2 s)\n")
    print("| what | time |")
    print("| --- | ---: |")
    print(f"| hostler apply, first (one transaction) | {first:.2f} s |")
    print(f"| hostler apply, again (no change) | {again:.2f} s |")
    print(f"| hostler apply, one [[check]] block's interval changed ({n_hosts:,} checks in place) | {changed:.2f} s |")
    print(f"| hostler host add + hostler schedule looped (200 of each timed, scaled) | {loop:.0f} s |")
    print(f"\nratio: apply is {loop / first:.0f}x faster than the CLI loop")


def lateness(base):
    """This node's start-lateness histogram from /metrics: {upper bound in ms: cumulative count}."""
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("hostler_job_start_lateness_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else round(float(le) * 1000)] = int(line.split()[-1])
    return out


def lateness_between(h0, h1):
    """(jobs started, p50 bound, p99 bound, worst bound) between two readings, in ms: each
    percentile is the upper bound of the bucket it falls in."""
    n = h1[float("inf")] - h0[float("inf")]
    def bound(q):
        for b in sorted(h1):
            if n and h1[b] - h0[b] >= q * n:
                return b
        return float("nan")
    return n, bound(0.5), bound(0.99), bound(1.0)


def bench_apply_latency(work):
    """Dispatch latency of a running `hostler serve` before, during and after an apply of the
    10,000-host, 50,000-check site on the same SQLite database: 20 probe checks starting every
    second (a script that only says OK, each on a host of its own), their start lateness read
    from /metrics. The daemon claims jobs 2 s ahead ([monitord] claim_ahead, the default). The site's checks
    run on a yearly cron, so that they are not due during the measurement."""
    n_hosts = 1000 if QUICK else 10000
    hosts = [f"h{i:05}" for i in range(n_hosts)]
    parts = [f'[[host]]\nname = "{h}"\naddress = "127.0.0.1"\nmethod = "local"\ntags = ["t{i % 10}"]\n'
             for i, h in enumerate(hosts)]
    for c in range(5):
        parts.append(f'[[check]]\nscript = "check_ping"\nname = "c{c}"\ncron = "0 3 1 1 *"\nhosts = ['
                     + ", ".join(f'"{h}"' for h in hosts) + "]\n")
    site = os.path.join(work, "site.toml")
    with open(site, "w") as f:
        f.write("\n".join(parts))
    conf = os.path.join(work, "hostler.toml")
    with open(conf, "w") as f:
        f.write("[web]\npublic_metrics = true\n[monitord]\nmax_concurrent = 32\n")
    env = dict(os.environ, HOSTLER_DB=os.path.join(work, "l.db"), HOSTLER_CONFIG=conf)
    run([HOSTLER, "init"], env=env, check=True)
    probe = os.path.join(work, "probe.rhai")
    with open(probe, "w") as f:
        f.write('//! kind: check\nok("up")\n')
    run([HOSTLER, "script", "add", "probe", probe], env=env, check=True)
    # Probe checks on hosts of their own, 20 starting a second: 20 x every checks every `every`
    # seconds (--probe-every=N, default 5). A host runs one job at a time ([monitord] per_host =
    # 1), so a check's next job is claimed ahead only once its last has run: with checks every
    # second a node claims at most about a second ahead, whatever claim_ahead says.
    every = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--probe-every=")), 5)
    for i in range(20 * every):
        run([HOSTLER, "host", "add", f"probe{i:03}", "--address", "127.0.0.1", "--method", "local"], env=env, check=True)
        run([HOSTLER, "schedule", "probe", "--host", f"probe{i:03}", "--every", f"{every}s", "--name", "p"], env=env, check=True)
    p, base = serve(env)
    rows = []
    try:
        time.sleep(6)  # past one interval of the probes
        def phase(name, action):
            h0 = lateness(base)
            t = time.perf_counter()
            held = action()
            took = time.perf_counter() - t
            h1 = lateness(base)
            rows.append((name, took, held) + lateness_between(h0, h1))
        quiet = lambda: time.sleep(10) or ""
        def apply(changed):
            def go():
                if changed:
                    with open(site) as f:
                        text = f.read().replace('cron = "0 3 1 1 *"', 'cron = "0 4 1 1 *"', 1)
                    with open(site, "w") as f:
                        f.write(text)
                r = run([HOSTLER, "apply", site, "--json"], env=env)
                if r.returncode != 0:
                    raise SystemExit(f"apply: {r.stderr}")
                held = json.loads(r.stdout).get("transaction_ms")
                time.sleep(0.5)  # the jobs that waited on it start now
                return f"{held} ms"
            return go
        phase("before (10 s)", quiet)
        phase(f"during the first apply ({6 * n_hosts:,} changes) and 0.5 s after", apply(False))
        phase("after (10 s)", quiet)
        phase(f"during an apply of {n_hosts:,} checks changed in place, and 0.5 s after", apply(True))
        phase("after (10 s)", quiet)
    finally:
        p.terminate()
        p.wait(10)
    print(f"\n## Dispatch latency of a running daemon around an apply of {n_hosts:,} hosts and {5 * n_hosts:,} checks "
          f"(20 probe checks starting a second, each every {every} s on a host of its own; "
          "goal: p99 under 100 ms during the apply)\n")
    print("| window | length | apply's transaction | jobs started | p50 | p99 | worst |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, took, held, n, p50, p99, worst in rows:
        print(f"| {name} | {took:.2f} s | {held or '-'} | {n} | <= {p50:g} ms | <= {p99:g} ms | <= {worst:g} ms |")
    print("\n(Each percentile is the upper bound of its bucket in hostler_job_start_lateness_seconds.)")


class TcpListener:
    """A local TCP listener (a thread) that accepts every connection and closes it at once, or
    with mute=True holds it open and says nothing (a hung service: an HTTP check against it
    waits for its whole timeout)."""

    def __init__(self, mute=False):
        import socket
        import threading
        self.mute = mute
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.listen(4096)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        import socket
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.accepted += 1
            if not self.mute:
                c.close()
                continue
            self.held.append(c)
            # The client gives up after its timeout; the oldest sockets are let go.
            if len(self.held) > 8192:
                old, self.held = self.held[:4096], self.held[4096:]
                for o in old:
                    o.close()

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()


def apply_site(folder, parts, env):
    """Writes a site file of `parts` in `folder` and applies it; RuntimeError if that fails (the
    checks benchmark reports it for that runner and goes on with the others)."""
    site = os.path.join(folder, "site.toml")
    with open(site, "w") as f:
        f.write("\n".join(parts))
    r = run([HOSTLER, "apply", site], env=env)
    if r.returncode != 0:
        raise RuntimeError(f"hostler apply: {r.stderr.strip()}")


def bench_mute(work):
    """Checks that wait on mute peers beside checks that do not: M HTTP checks (5 s timeout,
    every 5 s) against a listener that accepts and never answers, so that about M wait at
    once, and 100 TCP checks every second against a live listener. Reports the start lateness
    of all jobs (the live ones cannot be later than that), the runs completed, and RSS."""
    mute_n = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--mute=")), 200 if QUICK else 2000)
    live_n = 100
    window = 10 if QUICK else 30
    mute, live = TcpListener(mute=True), TcpListener()
    conf = os.path.join(work, "hostler.toml")
    with open(conf, "w") as f:
        f.write(f"[web]\npublic_metrics = true\n[monitord]\nmax_concurrent = {mute_n + 2 * live_n}\n")
    env = dict(os.environ, HOSTLER_DB=os.path.join(work, "m.db"), HOSTLER_CONFIG=conf)
    run([HOSTLER, "init"], env=env, check=True)
    parts = [f'[[host]]\nname = "m{i:05}"\naddress = "127.0.0.1"\nmethod = "local"\ntags = ["mute"]\n'
             for i in range(mute_n)]
    parts += [f'[[host]]\nname = "l{i:04}"\naddress = "127.0.0.1"\nmethod = "local"\ntags = ["live"]\n'
              for i in range(live_n)]
    parts.append(f'[[check]]\nscript = "check_http"\nevery = "5s"\ntags = ["mute"]\n'
                 f'args = {{ url = "http://127.0.0.1:{mute.port}/", timeout = "5" }}\n')
    parts.append(f'[[check]]\nscript = "check_tcp"\nevery = "1s"\ntags = ["live"]\n'
                 f'args = {{ port = "{live.port}" }}\n')
    apply_site(work, parts, env)
    p, base = serve(env)
    try:
        time.sleep(12)  # past the first timeouts: every mute check has waited once
        h0, live0, rss = lateness(base), live.accepted, 0
        t0 = time.time()
        while time.time() - t0 < window:
            time.sleep(1)
            rss = max(rss, memory_rss(p.pid))
        h1, live1 = lateness(base), live.accepted
        lag = [l for l in urllib.request.urlopen(base + "/metrics").read().decode().splitlines()
               if l.startswith("hostler_queue_lag_seconds")]
    finally:
        p.terminate()
        p.wait(30)
        mute.close()
        live.close()
    n, p50, p99, worst = lateness_between(h0, h1)
    print(f"\n## Checks waiting on mute peers ({mute_n:,} HTTP checks with a 5 s timeout every 5 s "
          f"against a listener that never answers, beside {live_n} TCP checks every second; "
          f"{window} s; goal: lateness p99 under 1 s, RSS at most 300 MB)\n")
    print("| jobs started | live checks done/s | lateness p50 | p99 | worst | RSS (max) | queue lag at the end |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print(f"| {n:,} | {(live1 - live0) / window:,.0f} of {live_n} | <= {p50:g} ms | <= {p99:g} ms | "
          f"<= {worst:g} ms | {rss / 1024:.0f} MB | {lag[0].split()[-1] if lag else '?'} s |")


def proc_tree(root):
    """{pid: (name, utime+stime+cutime+cstime in clock ticks)} of root and its descendants."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        close = s.rindex(")")
        f = s[close + 2:].split()
        procs[int(d)] = (s[s.index("(") + 1:close], int(f[1]), sum(int(x) for x in f[11:15]))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in tree:
            tree[pid] = (procs[pid][0], procs[pid][2])
            todo.extend(p for p, v in procs.items() if v[1] == pid)
    return tree


def tree_cpu(root):
    """CPU seconds (user + system) of root's process tree, with the children it has reaped."""
    return sum(t for _, t in proc_tree(root).values()) / os.sysconf("SC_CLK_TCK")


def tree_rss(root, names):
    """Summed VmRSS (kB) of the processes in root's tree whose name is in names."""
    total = 0
    for pid, (name, _) in proc_tree(root).items():
        if name in names:
            try:
                total += memory_rss(pid)
            except OSError:
                pass
    return total


def memory_rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop_group(p):
    """Stops a process started with start_new_session=True, then whatever is left of its group."""
    import signal
    if p is None:
        return
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def icinga_version():
    """Icinga 2's version (r2.13.6-1), or "" without it."""
    if not shutil.which("icinga2"):
        return ""
    first = run(["icinga2", "--version"]).stdout.split("\n")[0]
    return first.split("version: ")[1].rstrip(")") if "version: " in first else ""


class PgCluster:
    """A throwaway PostgreSQL cluster (Debian's postgresql), as tests/it/pgcluster.rs starts
    one: initdb as the `postgres` user (PostgreSQL refuses root) in a folder of its own, on a
    free loopback port, fsync and synchronous_commit off, trust for the superuser `hostler`."""

    def __init__(self, statements=False):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("no PostgreSQL server (apt-get install postgresql)")
        self.bin = os.path.dirname(found[-1])
        self.dir = tempfile.mkdtemp(prefix="hostler-bench-pg-")
        self.pre = []
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)
            self.pre = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        r = run(self.pre + [f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "hostler",
                            "--no-sync", "-E", "UTF8"])
        if r.returncode != 0:
            raise RuntimeError(f"initdb: {r.stderr.strip()[-300:]}")
        self.port = free_port()
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c max_connections=200")
        if statements:
            opts += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        self.statements = statements
        r = run(self.pre + [f"{self.bin}/pg_ctl", "-D", self.data, "-o", opts, "-l",
                            os.path.join(self.dir, "log"), "-w", "-t", "30", "start"])
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start: {r.stderr.strip()[-300:]}")

    def create(self, db):
        """A fresh database; its URL."""
        r = run([f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "hostler", db])
        if r.returncode != 0:
            raise RuntimeError(f"createdb: {r.stderr.strip()}")
        # --pg-connections=N: each node's connections (its URL's `connections`; half of them
        # record runs at once).
        extra = next((f"&connections={a.split('=', 1)[1]}" for a in sys.argv if a.startswith("--pg-connections=")), "")
        return f"postgres://hostler@127.0.0.1:{self.port}/{db}?sslmode=disable{extra}"

    def postmaster(self):
        return int(open(os.path.join(self.data, "postmaster.pid")).readline())

    def psql(self, db, sql):
        r = run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "hostler", "-d", db,
                 "-At", "-F", "\t", "-c", sql])
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()[-300:]}")
        return [l.split("\t") for l in r.stdout.splitlines()]

    def statements_reset(self, db):
        if self.statements:
            self.psql(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self.psql(db, "SELECT pg_stat_statements_reset()")

    def statements_report(self, db, label, checks):
        """With --pg-statements: the statements that took the server's time since the reset,
        per check."""
        if not self.statements:
            return
        rows = self.psql(db, "SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g') "
                             "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                             f"WHERE datname = '{db}') ORDER BY total_exec_time DESC")
        # A list of ids is a statement of its own for each length: counted as one.
        grouped = {}
        for calls, ms, nrows, q in rows:
            key = re.sub(r"IN \(\$\d+(, \$\d+)*\)", "IN (...)", q)
            c0, m0, r0 = grouped.get(key, (0, 0.0, 0))
            grouped[key] = (c0 + int(calls), m0 + float(ms), r0 + int(nrows))
        rows = sorted(((c, m, r, q) for q, (c, m, r) in grouped.items()), key=lambda t: (-t[1], -t[0]))
        total = sum(int(r[0]) for r in rows)
        ms = sum(float(r[1]) for r in rows)
        print(f"\n{label}: the server's statements, per check ({checks:,} checks): {total / max(checks, 1):.1f} "
              f"statements and {ms / max(checks, 1):.3f} ms of execution a check\n")
        print("| calls per check | server ms per check | rows per call | statement |")
        print("| ---: | ---: | ---: | --- |")
        for calls, ms, nrows, q in rows[:25]:
            c = int(calls)
            print(f"| {c / max(checks, 1):.2f} | {float(ms) / max(checks, 1):.3f} | {int(nrows) / max(c, 1):.1f} | {q[:110]} |")

    def stop(self):
        run(self.pre + [f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_checks(work):
    """Real TCP checks against one local listener: N checks due every second, run in turn by
    hostler's bundled check_tcp (no fork), by hostler's check_plugin running monitoring-plugins'
    check_tcp (a fork per check), and by Debian's Icinga 2 (its ITL `tcp` command, the same
    plugin). Per runner: checks completed per second, CPU per check, RSS and lateness."""
    # --rate=N: checks due a second (default 400; the lateness goal is stated at 200).
    N = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--rate=")), 100 if QUICK else 400)
    # --slots=N: hostler's max_concurrent (default 32).
    SLOTS = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--slots=")), 32)
    # --runners=bundled,Icinga: only the runners whose label holds one of these words.
    RUNNERS = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--runners=")), [])
    WARM = 5
    # --window=S: seconds measured per runner (default 30). From 120 s on, hostler's RSS and
    # rate are also printed once a minute (the memory-under-load curve).
    WINDOW = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--window=")), 10 if QUICK else 30)
    # --nodes=1,2,3: hostler's bundled check on a throwaway PostgreSQL cluster, with 1, 2
    # and 3 nodes in turn (issue 31's 8,333 checks a second). --pg-statements: the server's
    # statements per check too (pg_stat_statements).
    NODES = next(([int(n) for n in a.split("=", 1)[1].split(",")] for a in sys.argv if a.startswith("--nodes=")), [])
    curves = {}
    plugin = "/usr/lib/nagios/plugins/check_tcp"
    listener = TcpListener()
    rows = []
    notes = []

    def sample(pids, names, before=None, minute=None):
        """Sleeps through the window, sampling RSS once a second; (t0, t1, cpu s, max RSS kB),
        summed over the process trees of pids (one pid or a list). minute(elapsed s, RSS kB),
        when given, is called once a minute."""
        pids = pids if isinstance(pids, list) else [pids]
        cpu0, t0 = sum(tree_cpu(p) for p in pids), time.time()
        if before:
            before()
        rss, next_minute = 0, 60
        while time.time() - t0 < WINDOW:
            time.sleep(1)
            now_rss = sum(tree_rss(p, names) for p in pids)
            rss = max(rss, now_rss)
            if minute and time.time() - t0 >= next_minute:
                minute(next_minute, now_rss)
                next_minute += 60
        t1, cpu1 = time.time(), sum(tree_cpu(p) for p in pids)
        return t0, t1, cpu1 - cpu0, rss

    def runs_total(base):
        text = urllib.request.urlopen(base + "/metrics").read().decode()
        by = {}
        for line in text.splitlines():
            if line.startswith("hostler_runs_total{"):
                by[line.split('status="')[1].split('"')[0]] = int(line.split()[-1])
        return by

    def hostler_runner(label, use_plugin, pg=None, nodes=1):
        """One runner: on SQLite, or on the PostgreSQL cluster pg (a fresh database) with
        `nodes` nodes sharing its queue."""
        d = os.path.join(work, ("plugin" if use_plugin else "script") + (f"-pg{nodes}" if pg else ""))
        os.makedirs(d)
        conf = os.path.join(d, "hostler.toml")
        with open(conf, "w") as f:
            # check_tcp is among the default allowed_commands; extra_commands says so anyway.
            f.write(f'[web]\npublic_metrics = true\n[monitord]\nmax_concurrent = {SLOTS}\n'
                    f'[sandbox]\nextra_commands = ["{plugin}"]\n')
        dbname = f"bench{nodes}"
        db = pg.create(dbname) if pg else os.path.join(d, "c.db")
        env = dict(os.environ, HOSTLER_DB=db, HOSTLER_CONFIG=conf)
        r = run([HOSTLER, "init"], env=env)
        if r.returncode != 0:
            raise RuntimeError(f"hostler init: {r.stderr.strip()}")
        hosts = [f"t{i:04}" for i in range(N)]
        vars_ = (f'vars = {{ plugin = "check_tcp", plugin_args = "-H 127.0.0.1 -p {listener.port}" }}\n'
                 if use_plugin else "")
        # A rule over a tag, as a site with many hosts writes it: its hosts spread over the
        # interval (the splay), as Icinga 2 spreads its services' checks.
        parts = [f'[[host]]\nname = "{h}"\naddress = "127.0.0.1"\nmethod = "local"\ntags = ["bench"]\n{vars_}'
                 for h in hosts]
        block = f'[[check]]\nscript = "{"check_plugin" if use_plugin else "check_tcp"}"\nevery = "1s"\ntags = ["bench"]\n'
        if not use_plugin:
            block += f'args = {{ port = "{listener.port}" }}\n'
        parts.append(block)
        apply_site(d, parts, env)
        procs, bases = [], []
        try:
            for k in range(nodes):
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                log = os.path.join(d, f"serve{k}.log")
                # Each node works in a folder of its own, as on a machine of its own: with a
                # database URL, the first admin's one-time password file goes in the working
                # folder.
                home = os.path.join(d, f"n{k}")
                os.makedirs(home)
                with open(log, "w") as err:
                    procs.append(subprocess.Popen(
                        [HOSTLER, "serve", "--no-demo", "--node", f"n{k}", "--listen", f"127.0.0.1:{port}"],
                        env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True))
                for _ in range(100):
                    try:
                        urllib.request.urlopen(base + "/healthz").read()
                        break
                    except OSError:
                        if procs[-1].poll() is not None:
                            raise RuntimeError(f"hostler serve exited with {procs[-1].returncode}: {open(log).read()[-500:]}")
                        time.sleep(0.1)
                else:
                    raise RuntimeError("hostler serve's page never answered")
                bases.append(base)

            def dead():
                """What the nodes that exited said last."""
                gone = [f"node n{k} exited with {p.returncode}: {open(os.path.join(d, f'serve{k}.log')).read()[-400:]}"
                        for k, p in enumerate(procs) if p.poll() is not None]
                return " ".join(gone) or "every node still running"

            def totals():
                # The database's own count of runs, whichever node recorded them: any node's
                # /metrics says the same.
                return runs_total(bases[0])

            def hist():
                h = {}
                for b in bases:
                    for k, v in lateness(b).items():
                        h[k] = h.get(k, 0) + v
                return h

            time.sleep(WARM)
            try:
                c0, h0 = totals(), hist()
                if pg:
                    pg.statements_reset(dbname)
            except OSError as e:
                raise RuntimeError(f"{e}; {dead()}")
            curve, last = [], [sum(c0.values())]

            def minute(at, rss_now):
                done_now = sum(totals().values())
                curve.append((at, rss_now, (done_now - last[0]) / 60))
                last[0] = done_now
                print(f"  {label}: {at // 60} min, RSS {rss_now / 1024:.1f} MB, {curve[-1][2]:,.0f} checks/s", flush=True)

            # On PostgreSQL the server's CPU is the runner's too: its backends do the queue's work.
            roots = [p.pid for p in procs] + ([pg.postmaster()] if pg else [])
            try:
                pg0 = tree_cpu(pg.postmaster()) if pg else 0
                t0, t1, cpu, rss = sample(roots, ("hostler",), minute=minute if WINDOW >= 120 else None)
                if pg:
                    share = (tree_cpu(pg.postmaster()) - pg0) / max(cpu, 1e-9)
                    notes.append(f"{label}: PostgreSQL's share of the CPU: {share:.0%}")
                if curve:
                    curves[label] = curve
                c1, h1 = totals(), hist()
            except OSError as e:
                raise RuntimeError(f"{e}; {dead()}")
        finally:
            for p in procs:
                stop_group(p)
        done = sum(c1.values()) - sum(c0.values())
        if pg:
            pg.statements_report(dbname, label, done)
        bad = {k: c1[k] - c0.get(k, 0) for k in c1 if k != "ok" and c1[k] != c0.get(k, 0)}
        _, p50, p99, worst = lateness_between(h0, h1)
        problems = [l for k in range(nodes) for l in open(os.path.join(d, f"serve{k}.log")).read().splitlines()
                    if " WARN " in l or " ERROR " in l]
        if bad:
            notes.append(f"{label}: not OK in the window: {bad}")
        if problems:
            notes.append(f"{label}: {len(problems)} WARN/ERROR lines in its log, first: {problems[0][:300]}")
        rows.append((label, done / (t1 - t0), cpu * 1000 / max(done, 1), rss,
                     f"<= {p50:g} ms", f"<= {p99:g} ms"))

    def icinga_runner(label):
        exe = shutil.which("icinga2")
        if not exe:
            raise RuntimeError("icinga2 not installed (apt-get install icinga2-bin icinga2-common)")
        import grp
        import pwd
        d = os.path.join(work, "icinga2")
        dirs = {k: os.path.join(d, k) for k in ("data", "cache", "log", "spool", "run")}
        for x in dirs.values():
            os.makedirs(x)
        perf = os.path.join(d, "perf.tmp")
        lines = [
            f'const PluginDir = "{os.path.dirname(plugin)}"',
            "include <itl>",
            "include <plugins>",
            'object CheckerComponent "checker" { }',
            'object PerfdataWriter "pd" {',
            f'  host_perfdata_path = "{d}/host-perf.out"',
            f'  host_temp_path = "{d}/host-perf.tmp"',
            f'  service_perfdata_path = "{d}/perf.out"',
            f'  service_temp_path = "{perf}"',
            '  host_format_template = "$host.name$"',
            '  service_format_template = "$service.name$\\t$service.last_check$\\t$service.latency$\\t'
            '$service.execution_time$\\t$service.state$"',
            "  rotation_interval = 1d",
            "}",
            'object Host "bench" { address = "127.0.0.1"; check_command = "dummy"; check_interval = 1h }',
        ]
        for i in range(N):
            lines.append(f'object Service "t{i:04}" {{ host_name = "bench"; check_command = "tcp"; '
                         f'vars.tcp_address = "127.0.0.1"; vars.tcp_port = {listener.port}; '
                         f'check_interval = 1s; retry_interval = 1s; max_check_attempts = 1 }}')
        conf = os.path.join(d, "icinga2.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        defines = [
            f"-DConfiguration.DataDir={dirs['data']}", f"-DConfiguration.CacheDir={dirs['cache']}",
            f"-DConfiguration.LogDir={dirs['log']}", f"-DConfiguration.SpoolDir={dirs['spool']}",
            f"-DConfiguration.InitRunDir={dirs['run']}", f"-DConfiguration.PidPath={dirs['run']}/icinga2.pid",
            f"-DConfiguration.StatePath={dirs['data']}/icinga2.state",
            f"-DConfiguration.ModAttrPath={dirs['data']}/modified-attributes.conf",
            f"-DConfiguration.ObjectsPath={dirs['cache']}/icinga2.debug",
            f"-DConfiguration.VarsPath={dirs['cache']}/icinga2.vars",
            f"-DConfiguration.RunAsUser={pwd.getpwuid(os.geteuid()).pw_name}",
            f"-DConfiguration.RunAsGroup={grp.getgrgid(os.getegid()).gr_name}",
        ]
        r = run([exe, "daemon", "-C", "-c", conf] + defines)
        if r.returncode != 0:
            raise RuntimeError("icinga2 -C refused the config: "
                               + " / ".join(l for l in (r.stdout + r.stderr).splitlines() if "critical" in l)[-800:])
        log = os.path.join(d, "icinga2.out")
        p = None
        try:
            with open(log, "w") as out:
                p = subprocess.Popen([exe, "daemon", "-c", conf] + defines, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            for _ in range(300):
                if os.path.exists(perf) and os.path.getsize(perf) > 0:
                    break
                if p.poll() is not None:
                    raise RuntimeError(f"icinga2 exited with {p.returncode}: {open(log).read()[-500:]}")
                time.sleep(0.1)
            else:
                raise RuntimeError(f"no check result in 30 s: {open(log).read()[-500:]}")
            time.sleep(WARM)
            t0, t1, cpu, rss = sample(p.pid, ("icinga2",))
            time.sleep(1)
        finally:
            stop_group(p)  # SIGTERM: Icinga 2 closes (and so flushes) the perfdata file
        # On stop Icinga 2 moves the temp file to service_perfdata_path + "." + a timestamp.
        done, lat, states = 0, [], {}
        results = [open(x).read() for x in [perf] + glob.glob(os.path.join(d, "perf.out*")) if os.path.exists(x)]
        for line in "".join(results).splitlines():
            f = line.rstrip("\n").split("\t")
            try:
                at, latency = float(f[1]), float(f[2])
            except (IndexError, ValueError):
                continue
            if t0 <= at < t1:
                done += 1
                lat.append(latency * 1000)
                states[f[4]] = states.get(f[4], 0) + 1
        if not lat:
            raise RuntimeError(f"no check result in the window; its perfdata starts: {''.join(results)[:300]!r}; "
                               f"its log ends: {open(log).read()[-500:]}")
        lat.sort()
        if set(states) != {"OK"}:
            notes.append(f"{label}: states in the window: {states}")
        problems = [l for l in open(log).read().splitlines() if "warning/" in l or "critical/" in l]
        if problems:
            notes.append(f"{label}: {len(problems)} warning/critical lines in its log, first: {problems[0][:300]}")
        rows.append((label, done / (t1 - t0), cpu * 1000 / max(done, 1), rss,
                     f"{statistics.median(lat):.1f} ms", f"{lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.1f} ms"))

    runners = [
        ("hostler, bundled check_tcp (no fork)", False, lambda l: hostler_runner(l, False)),
        ("hostler, check_plugin running monitoring-plugins' check_tcp (a new process per check)", True,
         lambda l: hostler_runner(l, True)),
        ("Icinga 2 " + icinga_version() + ", ITL `tcp` (the same check_tcp)", True, icinga_runner),
    ]
    pg = None
    if NODES:
        # --nodes=1,2,3: the bundled check on PostgreSQL instead, with that many nodes sharing
        # one queue, each count on a fresh database of one throwaway cluster.
        try:
            pg = PgCluster(statements="--pg-statements" in sys.argv)
        except Exception as e:
            print(f"SKIPPED checks/PostgreSQL: {e}")
            listener.close()
            return
        runners = [(f"hostler, bundled check_tcp, PostgreSQL, {n} node{'s' if n > 1 else ''}", False,
                    lambda l, n=n: hostler_runner(l, False, pg, n)) for n in NODES]
    try:
        for label, needs_plugin, go in runners:
            if RUNNERS and not any(r in label for r in RUNNERS):
                continue
            if needs_plugin and not os.path.exists(plugin):
                print(f"SKIPPED checks/{label}: {plugin} missing (apt-get install monitoring-plugins-basic)")
                continue
            try:
                go(label)
            except Exception as e:  # one runner's failure is reported; the others still run
                print(f"SKIPPED checks/{label}: {e}")
    finally:
        listener.close()
        if pg:
            pg.stop()
    where = "on PostgreSQL, nodes sharing one queue" if NODES else "beside Icinga 2"
    print(f"\n## Real checks {where} ({N} checks due every second, {WINDOW} s each, one local TCP listener)\n")
    print("| runner | checks/s | CPU-ms per check | RSS (max) | lateness p50 | lateness p99 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, rate, cpu_ms, rss, p50, p99 in rows:
        print(f"| {name} | {rate:,.0f} | {cpu_ms:.2f} | {rss / 1024:.1f} MB | {p50} | {p99} |")
    print(f"\n(Each runner alone, after a {WARM} s warm-up; the listener accepted {listener.accepted:,} connections in all. "
          "checks/s: hostler's completed runs (the sum of `hostler_runs_total` over statuses, from /metrics) "
          "and Icinga 2's check results whose `$service.last_check$` falls in the window (its PerfdataWriter "
          "file), per second of the window. CPU: user + system time from /proc/PID/stat of the runner's process "
          "tree, with the plugins it reaped (cutime, cstime), over the window, per check completed. RSS: the largest "
          "once-a-second sum of VmRSS over the runner's own processes (hostler; every `icinga2` process), plugins "
          "not counted. On PostgreSQL, CPU also counts the cluster's (its backends do the queue's work), RSS "
          "is summed over hostler's nodes (not the cluster's), and lateness over the nodes' histograms. Lateness: hostler's is the upper bound of the bucket of `hostler_job_start_lateness_seconds` "
          "(start minus due time) that holds the percentile; Icinga 2's is `$service.latency$` "
          "(schedule end minus due time, less the plugin's execution time), median and p99 of the window's "
          f"results. hostler: max_concurrent = {SLOTS}, one host per check; Icinga 2: one host, one service per "
          "check, MaxConcurrentChecks at its default.)")
    for label, curve in curves.items():
        print(f"\n{label}, once a minute: | minute | RSS | checks/s in that minute |")
        for at, r, rate in curve:
            print(f"| {at // 60} | {r / 1024:.1f} MB | {rate:,.0f} |")
    for n in notes:
        print(f"\nnote: {n}")


def bench_queue():
    print("\n## monitord queue (cargo bench --bench queue)\n")
    r = subprocess.run(["cargo", "bench", "--quiet", "--bench", "queue", "--", "2000" if QUICK else "5000"],
                       capture_output=True, text=True)
    print("```")
    print((r.stdout + r.stderr).strip())
    print("```")


def bench_sqlxml():
    print("\n## SQLXML parsing (cargo bench --bench sqlxml)\n")
    r = subprocess.run(["cargo", "bench", "--quiet", "--bench", "sqlxml", "--", "20000" if QUICK else "100000"],
                       capture_output=True, text=True)
    print((r.stdout + r.stderr).strip())


def bench_history_web(work):
    """The dashboard, a check's page and /api/perfdata under wrk on the database of the scaled
    history soak (cargo bench --bench history, kept with HOSTLER_SOAK_KEEP)."""
    if not shutil.which("wrk"):
        print("SKIPPED history_web: wrk not installed (apt-get install wrk)")
        return
    checks, days = ("40", "1") if QUICK else ("200", "3")
    db = os.path.join(work, "soak.db")
    given = os.environ.get("HOSTLER_SOAK_DB")
    if given:
        # A database soaked before (HOSTLER_SOAK_KEEP), such as the 30-day one: a copy of it.
        shutil.copy(given, db)
        print(f"\n## The web page on a database soaked before ({given})\n")
    else:
        r = subprocess.run(["cargo", "bench", "--quiet", "--bench", "history", "--", checks, days],
                           env=dict(os.environ, HOSTLER_SOAK_KEEP=db), capture_output=True, text=True)
        print("\n## History soak, then the web page at that size (cargo bench --bench history -- "
              f"{checks} {days})\n")
        print("```")
        print((r.stdout + r.stderr).strip())
        print("```")
    if not os.path.exists(db):
        print("SKIPPED: the soak kept no database")
        return
    env = dict(os.environ, HOSTLER_DB=db)
    p, base, header = serve_logged_in(env)
    seconds = 5 if QUICK else 10
    rows = []
    try:
        host, check = "web0000.example.com", "check_web_0"
        pages = [
            ("dashboard", "/"),
            ("check page, 24 h chart", f"/checks/{host}/{check}"),
            ("check page, 1 y chart", f"/checks/{host}/{check}?range=1y"),
            ("/api/perfdata, last 24 h (raw points)", f"/api/perfdata?host={host}&check={check}"),
        ]
        for name, path in pages:
            wrk(base + path, header, 2)  # warm-up
            res = [wrk(base + path, header, seconds) for _ in range(3)]
            rows.append((name, statistics.median(x[0] for x in res), statistics.median(x[1] for x in res),
                         statistics.median(x[2] for x in res), sum(x[3] for x in res)))
    finally:
        p.terminate()
        p.wait(10)
    size = os.path.getsize(db)
    print(f"\n## The web page on the soaked database ({size / 1e6:.0f} MB; 16 connections, {seconds} s, "
          "median of 3; goal: dashboard p99 under 50 ms)\n")
    print("| page | requests/s | p50 | p99 | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rps, p50, p99, bad in rows:
        print(f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")


def main():
    if not os.path.exists(HOSTLER):
        sys.exit(f"no hostler binary at {HOSTLER}; build it with cargo build --release")
    print(f"# hostler benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {HOSTLER})")
    with tempfile.TemporaryDirectory() as work:
        if wanted("trivial"):
            bench_trivial_run(work)
        if wanted("expect"):
            bench_expect(work)
        if wanted("idle"):
            bench_idle_memory(work)
        if wanted("fanout"):
            bench_fanout(work)
        if wanted("web"):
            bench_web(work)
        if wanted("keepalive"):
            bench_keepalive(work)
        if wanted("history_web"):
            bench_history_web(work)
    if wanted("queue"):
        bench_queue()
    if wanted("ping"):
        with tempfile.TemporaryDirectory() as w:
            bench_ping(w)
    if wanted("apply"):
        with tempfile.TemporaryDirectory() as w:
            bench_apply(w)
    if wanted("apply") or wanted("apply_latency"):
        with tempfile.TemporaryDirectory() as w:
            bench_apply_latency(w)
    if wanted("checks"):
        with tempfile.TemporaryDirectory() as w:
            bench_checks(w)
    if ONLY == "mute":
        with tempfile.TemporaryDirectory() as w:
            bench_mute(w)
    if wanted("sqlxml"):
        bench_sqlxml()


if __name__ == "__main__":
    main()
