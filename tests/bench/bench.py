#!/usr/bin/env python3
"""hostler's benchmarks, each run side by side with its peer in one run; medians and ratios.

Usage: python3 tests/bench/bench.py [path/to/hostler] [--quick]
Run through tests/bench/run.sh, which installs the peers (pexpect, Tcl expect,
monitoring-plugins) and builds the release binary.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HOSTLER = os.path.abspath(next((a for a in sys.argv[1:] if not a.startswith("--")), "target/release/hostler"))
QUICK = "--quick" in sys.argv
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
    rows.append(("hostler serve (idle, empty queue)", idle([HOSTLER, "serve", "--no-demo"], env=env)))
    rows.append(("hostler serve (demo: 2 checks every 60 s)", idle([HOSTLER, "--db", os.path.join(work, "demo.db"), "serve"], env=env)))
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


def bench_queue():
    print("\n## monitord queue (cargo bench --bench queue)\n")
    r = subprocess.run(["cargo", "bench", "--quiet", "--bench", "queue", "--", "2000" if QUICK else "5000"],
                       capture_output=True, text=True)
    print("```")
    print((r.stdout + r.stderr).strip())
    print("```")


def main():
    if not os.path.exists(HOSTLER):
        sys.exit(f"no hostler binary at {HOSTLER}; build it with cargo build --release")
    print(f"# hostler benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {HOSTLER})")
    with tempfile.TemporaryDirectory() as work:
        bench_trivial_run(work)
        bench_expect(work)
        bench_idle_memory(work)
    bench_queue()


if __name__ == "__main__":
    main()
