//! A throwaway PostgreSQL cluster (Debian's postgresql): `initdb` in a temporary folder as
//! the unprivileged `postgres` user (PostgreSQL refuses to run as root), started on a free
//! loopback port with its socket in that folder, stopped and removed on drop. Shared by the
//! tests and the scale-out benchmark (which includes this file by its path), so it uses
//! nothing of either.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running cluster; `url(db)` reaches it as the superuser `hostler`.
pub struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// The server's options (port, socket folder, settings), to start it again.
    opts: String,
}

/// The newest server's programs (`/usr/lib/postgresql/N/bin`).
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `program args` as the `postgres` user when we are root, else as ourselves.
fn as_owner(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

impl Pg {
    pub fn start() -> Option<Pg> {
        Pg::start_with(|_| String::new())
    }

    /// A cluster that speaks TLS with a certificate for 127.0.0.1 signed by a CA of its own
    /// (made with the `openssl` command); answers it and the CA's PEM file.
    pub fn start_tls() -> Option<(Pg, PathBuf)> {
        let mut ca = PathBuf::new();
        let pg = Pg::start_with(|dir| {
            let openssl = |args: &[&str]| {
                let out = Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .output()
                    .expect("openssl");
                assert!(
                    out.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            let subj = |cn: &str| format!("/CN={cn}");
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &subj("hostler test CA"),
            ]);
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                &subj("127.0.0.1"),
            ]);
            std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
            openssl(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ]);
            if is_root() {
                let _ = Command::new("chown")
                    .args(["postgres:postgres", "server.key", "server.pem"])
                    .current_dir(dir)
                    .status();
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("key mode");
            ca = dir.join("ca.pem");
            format!(
                " -c ssl=on -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key",
                dir.display()
            )
        })?;
        Some((pg, ca))
    }

    /// Starts a cluster; `prepare` gets its folder before the server starts and answers
    /// more server options.
    fn start_with(prepare: impl FnOnce(&Path) -> String) -> Option<Pg> {
        let Some(bin) = bin_dir() else {
            if std::env::var("HOSTLER_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
                panic!("no PostgreSQL server here (/usr/lib/postgresql/*/bin/initdb)");
            }
            eprintln!(
                "SKIPPED: no PostgreSQL server (Debian's postgresql) for the PostgreSQL tests"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the cluster's folder");
        }
        let data = dir.path().join("data");
        let data_s = data.to_str().expect("path");
        let out = as_owner(
            &bin.join("initdb"),
            &[
                "-D",
                data_s,
                "-A",
                "trust",
                "-U",
                "hostler",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )
        .stdout(Stdio::null())
        .output()
        .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let extra = prepare(dir.path());
        for _ in 0..3 {
            let port = free_port();
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off{extra}",
                dir.path().display()
            );
            let log = dir.path().join("log");
            let st = as_owner(
                &bin.join("pg_ctl"),
                &[
                    "-D",
                    data_s,
                    "-o",
                    &opts,
                    "-l",
                    log.to_str().expect("path"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl start");
            if st.success() {
                return Some(Pg {
                    dir,
                    bin,
                    port,
                    opts,
                });
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Runs `pg_ctl` on this cluster, waiting for it; whether it succeeded.
    fn pg_ctl(&self, args: &[&str]) -> bool {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let mut all = vec![
            "-D",
            data.to_str().expect("path"),
            "-l",
            log.to_str().expect("path"),
            "-w",
            "-t",
            "30",
        ];
        all.extend_from_slice(args);
        as_owner(&self.bin.join("pg_ctl"), &all)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server (`-m fast`: sessions are ended, as on a restart or a failover).
    pub fn stop(&self) {
        assert!(self.pg_ctl(&["-m", "fast", "stop"]), "pg_ctl stop");
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) {
        assert!(
            self.pg_ctl(&["-o", &self.opts, "start"]),
            "pg_ctl start: {}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Ends every other session of database `db` (`pg_terminate_backend`), as an operator
    /// or a connection pooler's failover would; answers how many were ended.
    pub fn kill_sessions(&self, url: &str) -> usize {
        let admin = postgres::Client::connect(url, postgres::NoTls).expect("admin connection");
        let mut admin = admin;
        let rows = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .expect("terminate");
        rows.len()
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://hostler@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A new empty database.
    pub fn createdb(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "hostler",
                name,
            ])
            .output()
            .expect("createdb");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_owner(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}
