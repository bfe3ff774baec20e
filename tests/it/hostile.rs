//! Hostile clients against the real `hostler serve` (issue 13): huge announced bodies, stalled
//! heads and bodies, connection floods under a low descriptor limit, endless header lines,
//! slow and parallel /sqlxml queries, SIGTERM during a query, login guessing. Each attack
//! checks that the process lives, that `/healthz` answers at once, and that memory stays
//! bounded. CI runs this module a second time against the static release binary
//! (`HOSTLER_BIN`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::util::{Work, code, stdout, wait_for};

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real daemon with its web page on a free port; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin_password: String,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// `hostler serve` with this extra config, under `ulimit -n` when given.
    pub fn start(w: &Work, config: &str, nofile: Option<u32>) -> Daemon {
        let conf = w.path("hostler.toml");
        std::fs::write(&conf, format!("[monitord]\ngrace = 2.0\n{config}")).expect("config");
        let log = w.path("serve.log");
        let file = std::fs::File::create(&log).expect("log");
        let conf = conf.display().to_string();
        let args = [
            "--config",
            &conf,
            "serve",
            "--no-demo",
            "--listen",
            "127.0.0.1:0",
        ];
        let mut cmd = match nofile {
            None => w.cmd(&args),
            Some(n) => {
                // The soft and the hard limit both, so the daemon cannot raise it.
                let script = format!("ulimit -n {n} && exec \"$0\" \"$@\"");
                let bin = crate::util::bin();
                let mut argv = vec!["-c", script.as_str(), bin.as_str()];
                argv.extend(args);
                w.cmd_with("/bin/sh", &argv)
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("serve");
        let mut d = Daemon {
            child,
            addr: "127.0.0.1:1".parse().expect("addr"),
            admin_password: String::new(),
            log,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let text = d.log();
            if let Some(url) = text
                .lines()
                .find_map(|l| l.split("web page on http://").nth(1))
            {
                d.addr = url.trim().trim_end_matches('/').parse().expect("address");
                break;
            }
            assert!(Instant::now() < end, "serve did not start: {text}");
            assert!(d.alive(), "serve exited: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let pw = w.path("hostler.db.admin-password");
        assert!(
            wait_for(Duration::from_secs(10), || pw.exists()),
            "no admin password file"
        );
        assert!(
            !std::fs::read_to_string(&pw)
                .expect("password")
                .trim()
                .is_empty()
        );
        // The one-time password opens only the page that replaces it: replaced here from
        // the machine itself, which also removes its file.
        d.admin_password = "Hostile-admin-pw-1".into();
        let out = w.run_with_input(
            &["user", "add", "admin", "--replace", "--password-stdin"],
            &format!("{}\n", d.admin_password),
        );
        assert_eq!(code(&out), 0, "{}", crate::util::stderr(&out));
        assert!(
            !pw.exists(),
            "the one-time password file outlived its password"
        );
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// `/healthz` from a client address of its own: answered 200 within a second.
    pub fn assert_healthy(&mut self, from: u8, during: &str) {
        let started = Instant::now();
        let (status, body) = request(
            self.addr,
            from,
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        );
        let took = started.elapsed();
        assert_eq!(status, 200, "/healthz {during}: {body}");
        assert!(
            took < Duration::from_secs(1),
            "/healthz took {took:?} {during}"
        );
        assert!(self.alive(), "the daemon died {during}");
    }
}

/// A connection from 127.0.0.`from`.
pub fn connect(addr: SocketAddr, from: u8) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, from)), 0);
    s.bind(&src.into())?;
    s.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    let t: TcpStream = s.into();
    t.set_read_timeout(Some(Duration::from_secs(15)))?;
    t.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(t)
}

/// A connection that gives up after 300 ms.
fn connect_quick(addr: SocketAddr, from: u8) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, from)), 0);
    s.bind(&src.into())?;
    s.connect_timeout(&addr.into(), Duration::from_millis(300))?;
    Ok(s.into())
}

/// Sends raw bytes and reads the answer's status and body (until the server closes, or the
/// first answer's Content-Length is read).
pub fn request(addr: SocketAddr, from: u8, bytes: &[u8]) -> (u16, String) {
    let mut s = connect(addr, from).expect("connect");
    s.write_all(bytes).expect("send");
    read_answer(&mut s)
}

fn read_answer(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return (status, format!("{head}\r\n\r\n{text}"));
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return (0, String::from_utf8_lossy(&buf).to_string()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn basic(user: &str, pw: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
}

fn sqlxml_get(addr: SocketAddr, from: u8, auth: &str, sql: &str) -> (u16, String) {
    let q = hostler::urlencode::encode(sql);
    request(
        addr,
        from,
        format!(
            "GET /sqlxml?sql={q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

#[test]
fn announced_bodies_of_any_size_get_413_and_allocate_nothing() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let before = d.rss_kib();
    for round in 0..10 {
        for len in [
            "1099511627776",
            "18446744073709551615",
            "99999999999999999999999999",
            "4097",
        ] {
            let (status, body) = request(
                d.addr,
                1,
                format!("POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len}\r\n\r\n")
                    .as_bytes(),
            );
            let want = if len == "4097" {
                401
            } else if len.len() > 20 {
                400
            } else {
                413
            };
            assert_eq!(status, want, "round {round}, Content-Length {len}: {body}");
        }
    }
    d.assert_healthy(2, "after 40 huge announced bodies");
    let grew = d.rss_kib().saturating_sub(before);
    assert!(grew < 30 * 1024, "RSS grew by {grew} KiB");
}

#[test]
fn stalled_clients_hold_nothing_and_are_dropped_at_their_deadline() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let stalls: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n",
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3000\r\n\r\nusername=a",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n",
        b"GET /dashboard HT",
        b"",
    ];
    let mut held = Vec::new();
    for i in 0..40 {
        let mut s = connect(d.addr, 1).expect("connect");
        s.write_all(stalls[i % stalls.len()]).expect("send");
        held.push(s);
    }
    // A request that got its 401, then nothing more on the kept connection.
    let mut kept = connect(d.addr, 1).expect("connect");
    kept.write_all(b"GET /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    assert_eq!(read_answer(&mut kept).0, 401);
    for _ in 0..5 {
        d.assert_healthy(2, "with 41 stalled connections");
    }
    // The head deadline (10 s) closes the ones that never finished their head, the body
    // deadline (30 s) the others; a closed connection reads as EOF (after a 408).
    let started = Instant::now();
    let mut s = held.swap_remove(3);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "a stalled head was held {took:?}"
    );
    assert!(
        String::from_utf8_lossy(&rest).contains("408"),
        "a stalled head got: {}",
        String::from_utf8_lossy(&rest)
    );
    d.assert_healthy(2, "after the stalled heads were dropped");
}

#[test]
fn a_connection_flood_never_closes_the_listener() {
    let w = Work::new();
    // Descriptors run out before the web server's own limit: it is cut at start to what
    // the open-files limit leaves (512 of 1,024), and the limit is lowered under the running
    // daemon to 48, as when scripts' sessions hold the rest. accept() must fail with EMFILE,
    // and the listener must come back once the flood ends.
    let mut d = Daemon::start(
        &w,
        "[web]\nmax_connections = 100000\nmax_connections_per_client = 100000\n",
        Some(1024),
    );
    assert!(
        d.log().contains("max_connections is cut to 512"),
        "the limit was not cut to the descriptors: {}",
        d.log()
    );
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &d.child.id().to_string(), "--nofile=48:48"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(lowered.success(), "prlimit failed");
    let mut flood = Vec::new();
    let mut failures = 0;
    for i in 0..300u32 {
        match connect_quick(d.addr, 10 + (i % 8) as u8) {
            Ok(s) => flood.push(s),
            // The backlog is full: enough.
            Err(_) => {
                failures += 1;
                if failures >= 3 {
                    break;
                }
            }
        }
    }
    assert!(
        wait_for(Duration::from_secs(10), || d
            .log()
            .contains("accept failed, retrying")),
        "the flood never reached the descriptor limit: {}",
        d.log()
    );
    assert!(d.alive(), "the daemon died in the flood");
    drop(flood);
    let mut ok = false;
    let end = Instant::now() + Duration::from_secs(10);
    while !ok && Instant::now() < end {
        let (status, _) = request(
            d.addr,
            2,
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        );
        ok = status == 200;
        if !ok {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(ok, "the listener did not come back: {}", d.log());
    d.assert_healthy(2, "after the flood");
}

#[test]
fn one_client_address_cannot_take_every_connection() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut s = connect(d.addr, 1).expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\n").expect("send");
        held.push(s);
    }
    // Past the per-client limit (64): refused at once with a 503.
    let (status, body) = request(
        d.addr,
        1,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many connections"), "{body}");
    d.assert_healthy(2, "while one address holds its 64 connections");
}

#[test]
fn an_endless_header_line_is_refused_and_memory_stays_bounded() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let before = d.rss_kib();
    let mut s = connect(d.addr, 1).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        .expect("send");
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    // Up to 512 MiB; the server stops reading after 8 KiB and closes.
    while sent < 512 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 64 << 20, "the server kept reading ({sent} bytes)");
    d.assert_healthy(2, "after an endless header line");
    // A long request line, and too many header lines.
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert_eq!(request(d.addr, 1, long_target.as_bytes()).0, 414);
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    assert_eq!(request(d.addr, 1, many.as_bytes()).0, 431);
    let grew = d.rss_kib().saturating_sub(before);
    assert!(grew < 30 * 1024, "RSS grew by {grew} KiB");
}

#[test]
fn sqlxml_queries_stay_within_their_limits_and_sigterm_ends_them() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let auth = basic("admin", &d.admin_password);
    // A LIKE pattern past the endpoint's limit fails at once instead of running for minutes.
    let started = Instant::now();
    let (status, body) = sqlxml_get(
        d.addr,
        1,
        &auth,
        "SELECT 1 AS x WHERE printf('%.*c', 1000000, 'a') LIKE '%' || printf('%.*c', 40000, 'a') || 'b' FOR XML RAW",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("MSSQLError"), "{body}");
    assert!(body.contains("LIKE or GLOB pattern too complex"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A query that runs long: the endpoint is busy, others get 503 at once, the page answers.
    let slow = {
        let (addr, auth) = (d.addr, auth.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let r = sqlxml_get(
                addr,
                3,
                &auth,
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) AS n FROM c FOR XML RAW",
            );
            (r, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..8 {
        let started = Instant::now();
        let (status, body) = sqlxml_get(d.addr, 4 + i, &auth, "SELECT 1 AS x FOR XML RAW");
        assert_eq!(status, 503, "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    d.assert_healthy(2, "while a /sqlxml query runs");
    let ((status, body), took) = slow.join().expect("slow query");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ran too long"), "{body}");
    assert!(took < Duration::from_secs(13), "the query ran {took:?}");
    // SIGTERM during a query: the process is gone well within its grace.
    let slow = {
        let (addr, auth) = (d.addr, auth.clone());
        std::thread::spawn(move || {
            sqlxml_get(
                addr,
                3,
                &auth,
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) AS n FROM c FOR XML RAW",
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    assert!(
        wait_for(Duration::from_secs(8), || !d.alive()),
        "SIGTERM did not stop the daemon in 8 s"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    let _ = slow.join();
}

#[test]
fn sqlxml_answers_never_run_as_pages() {
    let w = Work::new();
    let d = Daemon::start(&w, "", None);
    let auth = basic("admin", &d.admin_password);
    let t = hostler::urlencode::encode(
        "<html xmlns:sql=\"urn:schemas-microsoft-com:xml-sql\"><script>alert(1)</script></html>",
    );
    let (status, body) = request(
        d.addr,
        1,
        format!("GET /sqlxml?template={t} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let head = body.to_ascii_lowercase();
    assert!(head.contains("content-security-policy: sandbox"), "{body}");
    assert!(head.contains("x-content-type-options: nosniff"), "{body}");
}

#[test]
fn guessing_from_one_address_never_locks_the_admin_out() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let wrong = basic("admin", "not-the-password");
    let right = basic("admin", &d.admin_password);
    // Three free tries, then 1 s, 2 s, 4 s... between tries from this address; tries while
    // waiting are refused unchecked (and not counted).
    for pause in [0, 0, 0, 1100, 2100] {
        std::thread::sleep(Duration::from_millis(pause));
        let (status, _) = sqlxml_get(d.addr, 1, &wrong, "SELECT 1 AS x FOR XML RAW");
        assert_eq!(status, 401);
    }
    for _ in 0..5 {
        let (status, _) = sqlxml_get(d.addr, 1, &wrong, "SELECT 1 AS x FOR XML RAW");
        assert_eq!(status, 429);
    }
    // The guesser's address now waits (4 s), even with the right password...
    let (status, _) = sqlxml_get(d.addr, 1, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 429, "the guessing address was not slowed down");
    assert!(d.log().contains("too many failed logins"), "{}", d.log());
    // ...while the admin elsewhere gets in, by basic auth and by the form.
    let (status, body) = sqlxml_get(d.addr, 2, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    // Parallel requests with the right password are never counted as failures.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (addr, right) = (d.addr, right.clone());
            std::thread::spawn(move || sqlxml_get(addr, 5, &right, "SELECT 1 AS x FOR XML RAW").0)
        })
        .collect();
    for t in threads {
        let status = t.join().expect("thread");
        assert!(
            status == 200 || status == 503,
            "a right password got {status}"
        );
    }
    let (status, body) = sqlxml_get(d.addr, 5, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    // The CLI lifts the brake for the guessing address too.
    let out = w.run(&["user", "unlock", "admin"]);
    assert_eq!(code(&out), 0, "{}", crate::util::stderr(&out));
    assert!(stdout(&out).contains("unlocked admin"));
    let (status, body) = sqlxml_get(d.addr, 1, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    d.assert_healthy(2, "after the guessing");
    let out = w.run(&["user", "unlock", "nobody"]);
    assert_ne!(code(&out), 0);
}

#[test]
fn healthz_says_degraded_while_the_database_cannot_be_written() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let health = |d: &Daemon| {
        request(
            d.addr,
            2,
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
    };
    assert_eq!(health(&d).0, 200);
    // Another process holds the write lock: monitord's claims fail after their busy timeout.
    let conn = rusqlite::Connection::open(w.db()).expect("sqlite");
    conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let mut last = String::new();
    let degraded = wait_for(Duration::from_secs(20), || {
        let started = Instant::now();
        let (status, body) = health(&d);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "/healthz waited"
        );
        last = body.clone();
        status == 503 && body.contains("database cannot be written")
    });
    assert!(degraded, "never degraded: {last}");
    conn.execute_batch("ROLLBACK").expect("unlock");
    assert!(
        wait_for(Duration::from_secs(15), || health(&d).0 == 200),
        "never recovered"
    );
    d.assert_healthy(2, "after the lock was released");
}

/// The peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A memory cgroup (v1) of this process's own with a limit, removed on drop; None where the
/// hierarchy is not there or not writable.
struct MemoryCgroup(std::path::PathBuf);

impl MemoryCgroup {
    fn new(limit: u64) -> Option<MemoryCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))?;
        let dir = std::path::Path::new("/sys/fs/cgroup/memory")
            .join(rel.trim_start_matches('/'))
            .join(format!("hostler-test-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let cg = MemoryCgroup(dir);
        std::fs::write(cg.0.join("memory.limit_in_bytes"), limit.to_string()).ok()?;
        Some(cg)
    }

    fn add(&self, pid: u32) -> bool {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).is_ok()
    }

    fn ooms(&self) -> u64 {
        std::fs::read_to_string(self.0.join("memory.failcnt"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The daemon is killed before this runs (it was declared after); wait for it to leave.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_flood_of_password_checks_keeps_memory_bounded() {
    let w = Work::new();
    // A 1 GiB VM: the daemon runs in a memory cgroup of 1 GiB where this machine has one.
    let cgroup = MemoryCgroup::new(1 << 30);
    let mut d = Daemon::start(&w, "", None);
    match &cgroup {
        Some(cg) => assert!(
            cg.add(d.child.id()),
            "cannot move the daemon into its cgroup"
        ),
        None => eprintln!("no writable memory cgroup here: checking the peak RSS only"),
    }
    // 64 connections from 8 addresses, each with a name never seen before (the brake per
    // name and address never applies), 4 rounds each: before the bound on hashing, each
    // took 19 MiB at once.
    let addr = d.addr;
    let flood: Vec<_> = (0..64u32)
        .map(|i| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for round in 0..4 {
                    let auth = basic(&format!("stranger{i}x{round}"), "guess");
                    got.push(
                        sqlxml_get(addr, 10 + (i % 8) as u8, &auth, "SELECT 1 AS x FOR XML RAW").0,
                    );
                }
                got
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    d.assert_healthy(2, "during a flood of password checks");
    let mut statuses = Vec::new();
    for t in flood {
        statuses.extend(t.join().expect("flood thread"));
    }
    assert!(
        statuses.iter().all(|s| [401, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "64 clients at once never met the bound on hashing: {statuses:?}"
    );
    let peak = peak_rss_kib(d.child.id());
    eprintln!(
        "argon2 flood: {} answers ({} of them 503), peak RSS {peak} KiB",
        statuses.len(),
        statuses.iter().filter(|s| **s == 503).count()
    );
    assert!(
        peak < 300 * 1024,
        "the daemon's peak RSS was {peak} KiB under the flood"
    );
    if let Some(cg) = &cgroup {
        assert_eq!(cg.ooms(), 0, "the 1 GiB cgroup hit its limit");
    }
    d.assert_healthy(2, "after a flood of password checks");
    // The admin still gets in.
    let right = basic("admin", &d.admin_password);
    let (status, body) = sqlxml_get(d.addr, 3, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    drop(d);
}

#[test]
fn one_name_guessed_from_many_addresses_is_slowed_and_the_admin_still_gets_in() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let right = basic("admin", &d.admin_password);
    // The admin has logged in from 127.0.0.3 before.
    assert_eq!(
        sqlxml_get(d.addr, 3, &right, "SELECT 1 AS x FOR XML RAW").0,
        200
    );
    // 60 addresses, two guesses each (never enough to brake one address).
    let wrong = basic("admin", "not-the-password");
    let mut refused = 0;
    let mut checked = 0;
    for from in 20..80u8 {
        for _ in 0..2 {
            match sqlxml_get(d.addr, from, &wrong, "SELECT 1 AS x FOR XML RAW").0 {
                401 => checked += 1,
                429 => refused += 1,
                other => panic!("a guess got {other}"),
            }
        }
    }
    assert!(
        checked <= 25,
        "{checked} of 120 guesses from 60 addresses were checked: the name was never slowed"
    );
    assert!(refused >= 95, "{refused} guesses refused");
    // An address that never logged in as admin waits too, with the reason (its guess is not
    // checked)...
    let (status, body) = sqlxml_get(d.addr, 4, &wrong, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("many addresses"), "{body}");
    // ...but the one the admin used before gets in, and so does a token.
    let (status, body) = sqlxml_get(d.addr, 3, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    let out = w.run(&["user", "token", "add", "admin"]);
    assert_eq!(code(&out), 0, "{}", crate::util::stderr(&out));
    let token = stdout(&out).trim().to_string();
    let get = |from: u8, token: &str| {
        request(
            d.addr,
            from,
            format!("GET /api/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    assert_eq!(get(4, &token).0, 200);
    // Wrong tokens from one shared address, fast: a scraper's right token from the same
    // address is never refused.
    for i in 0..20 {
        let (status, _) = get(5, &format!("hst_{:048x}", i));
        assert_eq!(status, 401);
    }
    let (status, body) = get(5, &token);
    assert_eq!(
        status, 200,
        "a right token was refused after wrong ones: {body}"
    );
    // `hostler user unlock` lifts the name's brake everywhere: a guess is checked again.
    let out = w.run(&["user", "unlock", "admin"]);
    assert_eq!(code(&out), 0, "{}", crate::util::stderr(&out));
    let (status, body) = sqlxml_get(d.addr, 4, &wrong, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 401, "{body}");
    d.assert_healthy(2, "after the distributed guessing");
}

#[test]
fn idle_connections_from_a_few_addresses_never_lock_out_another() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "[web]\nmax_connections = 512\n", None);
    // 512 idle connections (the limit set here) from nine addresses, within each address's 64.
    let mut idle = Vec::new();
    for from in 0..9u8 {
        for _ in 0..57 {
            if let Ok(s) = connect_quick(d.addr, 100 + from) {
                idle.push(s);
            }
        }
    }
    assert!(idle.len() >= 500, "only {} connections opened", idle.len());
    std::thread::sleep(Duration::from_millis(300));
    // Another address still gets /healthz at once, and the admin logs in.
    d.assert_healthy(2, "with 512 idle connections open");
    let right = basic("admin", &d.admin_password);
    let (status, body) = sqlxml_get(d.addr, 3, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    // A stranger's address at its share cannot take a place from another stranger's.
    let extra = connect_quick(d.addr, 100);
    if let Ok(mut s) = extra {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            n == 0 || text.contains(" 503 ") || text.contains(" 200 "),
            "{text}"
        );
    }
    drop(idle);
    d.assert_healthy(2, "after the idle connections closed");
}

/// The resident memory (VmRSS) of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Raises this process's open-files limit to its hard limit for `n` connections and some to
/// spare; false, saying the test is skipped and why, when the hard limit is below that.
fn open_files_for(n: usize) -> bool {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let need = (n + 500) as u64;
    if hard < need {
        eprintln!("SKIPPED: this test needs {need} open files, and the hard limit is {hard}");
        return false;
    }
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
    true
}

#[test]
fn thousands_of_idle_kept_alive_connections_hold_little_and_others_are_answered_at_once() {
    const N: usize = 3000;
    if !open_files_for(N) {
        return;
    }
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    d.assert_healthy(2, "before");
    let pid = d.child.id();
    let before = rss_kib(pid);
    // Each connection asks once (kept alive), reads its answer, and stays open, idle: 50 from
    // each of 60 addresses, within each address's 64.
    let mut idle = Vec::new();
    for i in 0..N {
        let from = 20 + u8::try_from(i / 50).expect("address");
        let mut s = connect(d.addr, from).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("send");
        idle.push(s);
    }
    for s in &mut idle {
        let (status, text) = read_answer(s);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("connection: keep-alive"), "{text}");
    }
    let held = rss_kib(pid).saturating_sub(before);
    // Another address is answered at once, and a page that reads the database too.
    d.assert_healthy(2, &format!("with {N} idle connections open"));
    let right = basic("admin", &d.admin_password);
    let (status, body) = sqlxml_get(d.addr, 3, &right, "SELECT 1 AS x FOR XML RAW");
    assert_eq!(status, 200, "{body}");
    // A thread per connection held 8 MiB of address space and tens of KB each; a task holds
    // a few KB (the debug build's futures are larger than the release build's).
    assert!(
        held < (N as u64) * 20,
        "{N} idle connections grew the daemon by {held} KiB"
    );
    // They are all still open: each answers a second request.
    for s in &mut idle {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("send again");
        let (status, text) = read_answer(s);
        assert_eq!(status, 200, "{text}");
    }
    drop(idle);
    d.assert_healthy(2, "after the idle connections closed");
}

#[test]
fn large_unfinished_heads_on_many_connections_share_a_bounded_budget() {
    // 1,400 connections, each 60 KiB into a head it never finishes: 82 MiB in all, past the
    // 64 MiB that read buffers may hold together.
    const N: usize = 1400;
    const PART: usize = 60 * 1024;
    if !open_files_for(N) {
        return;
    }
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let pid = d.child.id();
    let before = rss_kib(pid);
    let mut part = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    // Lines of 6,000 bytes: within the 8 KiB a line may hold and the 100 lines of a head.
    while part.len() + 6000 <= PART {
        part.extend_from_slice(b"X-Filler: ");
        part.extend_from_slice(&[b'a'; 5988]);
        part.extend_from_slice(b"\r\n");
    }
    let mut held = Vec::new();
    for i in 0..N {
        let from = 20 + u8::try_from(i / 50).expect("address");
        let mut s = connect(d.addr, from).expect("connect");
        s.write_all(&part).expect("send");
        held.push(s);
    }
    // The daemon reads what it may (a debug build takes seconds); those past the budget are
    // told so and closed. Wait until its memory stops growing, within the heads' 10 s.
    let mut last = 0;
    let mut steady = 0;
    let end = Instant::now() + Duration::from_secs(8);
    while steady < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(300));
        let now = rss_kib(pid);
        steady = if now.abs_diff(last) < 1024 {
            steady + 1
        } else {
            0
        };
        last = now;
    }
    let grown = rss_kib(pid).saturating_sub(before);
    d.assert_healthy(2, &format!("with {N} unfinished 60 KiB heads"));
    let mut refused = 0;
    for s in &mut held {
        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = [0u8; 512];
        if let Ok(n) = s.read(&mut buf)
            && String::from_utf8_lossy(&buf[..n]).contains(" 503 ")
        {
            refused += 1;
        }
    }
    assert!(refused > 0, "no request was refused past the budget");
    // Without the budget each buffer grows to 64-128 KiB: 90-180 MB for these.
    assert!(
        grown < 100 * 1024,
        "{N} unfinished heads grew the daemon by {grown} KiB"
    );
    drop(held);
    d.assert_healthy(2, "after they closed");
}

#[test]
fn anonymous_bodies_are_refused_for_every_method() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] {
        let mut s = connect(d.addr, 4).expect("connect");
        let head = format!(
            "{method} /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).expect("head");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let line = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        assert!(
            line.contains(" 401 "),
            "{method} with a 1 MiB body was read: {line:?}"
        );
    }
    let before = d.rss_kib();
    // 200 anonymous GETs announcing 1 MiB each, at once: none is read.
    let held: Vec<_> = (0..200)
        .filter_map(|i| {
            let mut s = connect(d.addr, 10 + (i % 8) as u8).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n")
                .ok()?;
            s.write_all(&[b'x'; 65536]).ok()?;
            Some(s)
        })
        .collect();
    assert!(held.len() > 100);
    std::thread::sleep(Duration::from_millis(500));
    let grown = d.rss_kib().saturating_sub(before);
    assert!(grown < 100 * 1024, "grew by {grown} KiB");
    drop(held);
    d.assert_healthy(2, "after anonymous bodies");
}

#[test]
fn sigterm_ends_a_job_waiting_on_a_mute_peer_within_the_grace() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "[sandbox]\ntimeout = 120.0\n", None);
    // A peer that accepts and never says a word.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = mute.local_addr().expect("addr").port();
    std::fs::write(
        w.path("probe.rhai"),
        format!(r#"let r = tcp_check("127.0.0.1", {port}, #{{expect: "never", timeout: 100}}); ok(`${{r.ok}}`)"#),
    )
    .expect("script");
    let out = w.run(&["script", "add", "probe", "probe.rhai"]);
    assert_eq!(code(&out), 0, "{}", crate::util::stderr(&out));
    let out = w.run(&["schedule", "probe"]);
    assert_eq!(code(&out), 0, "{}", crate::util::stderr(&out));
    assert!(
        wait_for(Duration::from_secs(20), || stdout(
            &w.run(&["queue", "--json"])
        )
        .contains("\"running\"")),
        "the job never started: {}",
        d.log()
    );
    let _accepted = mute.accept().expect("the probe connected");
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    let ended = wait_for(Duration::from_secs(10), || !d.alive());
    let took = t0.elapsed();
    assert!(
        ended,
        "serve still runs {took:?} after SIGTERM: {}",
        d.log()
    );
    // The grace is 2 s; the cancel that follows it ends the wait at once.
    assert!(took < Duration::from_secs(4), "serve took {took:?} to stop");
}

#[test]
fn pings_with_many_tokens_huge_and_stalled_bodies_hold_nothing() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "", None);
    let o = w.run(&["heartbeat", "add", "job", "--every", "1h", "--json"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&crate::util::stdout(&o)).expect("json");
    let token = v["url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("token")
        .to_string();
    // A thousand tokens that open nothing: 404 each, answered at once.
    let started = Instant::now();
    for i in 0..1000 {
        let (code, _) = request(
            d.addr,
            (i % 8 + 1) as u8,
            format!("GET /ping/hb_{i:040} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
        );
        assert_eq!(code, 404);
    }
    eprintln!("1,000 wrong tokens in {:?}", started.elapsed());
    d.assert_healthy(2, "after 1,000 wrong tokens");
    // A body announced past 100 KB: 413 before it is read.
    let (code, _) = request(
        d.addr,
        2,
        format!(
            "POST /ping/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(code, 413);
    // Stalled bodies on the right token hold nothing: others are answered meanwhile.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = connect(d.addr, 3).expect("connect");
        s.write_all(
            format!(
                "POST /ping/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000\r\n\r\nstarted"
            )
            .as_bytes(),
        )
        .expect("send");
        held.push(s);
    }
    d.assert_healthy(2, "with 20 stalled ping bodies");
    let (code, _) = request(
        d.addr,
        4,
        format!("GET /ping/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 200, "the token still pings");
    drop(held);
    assert!(d.alive());
}
