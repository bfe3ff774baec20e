//! Real network peers for the remote-session tests, each on a free loopback port and stopped
//! on drop: OpenSSH's sshd (Debian openssh-server), busybox telnetd with /bin/login (Debian
//! busybox-static), and a test account both log in to.
//!
//! They need root (sshd checks passwords through PAM; login switches users). Without root, or
//! without the programs, the tests say they are skipped, or fail under HOSTLER_REQUIRE_PEERS=1.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use crate::util::{have, wait_for};

/// The account the peers log in to, created by the tests when missing (login shell /bin/sh,
/// Debian's dash).
pub const USER: &str = "hostlertest";
pub const PASSWORD: &str = "Hostler-test-pw-7";
/// Accounts with other stock login shells, same password: bash (with Debian's /etc/inputrc,
/// so bracketed paste is on), busybox ash.
pub const BASH_USER: &str = "hostlerbash";
pub const ASH_USER: &str = "hostlerash";
pub const ZSH_USER: &str = "hostlerzsh";
const ASH_DIR: &str = "/usr/local/lib/hostlertest";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn is_root() -> bool {
    // No libc call: the uid of this process, as the kernel reports it.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether the peers can run here; says why not, or fails under HOSTLER_REQUIRE_PEERS=1.
pub fn can_run(program: &str, why: &str) -> bool {
    if !have(program, why) {
        return false;
    }
    if !is_root() {
        if std::env::var("HOSTLER_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
            panic!("{program} needs root here ({why})");
        }
        eprintln!("SKIPPED: {program} needs root ({why})");
        return false;
    }
    account();
    true
}

/// Creates the test account (once) and sets its password.
fn account() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // busybox runs the applet its name says: ash as a login shell is a link named ash,
        // listed in /etc/shells for login and sshd.
        let _ = std::fs::create_dir_all(ASH_DIR);
        let ash = format!("{ASH_DIR}/ash");
        if std::fs::symlink_metadata(&ash).is_err() {
            std::os::unix::fs::symlink("/bin/busybox", &ash).expect("link ash to busybox");
        }
        let shells = std::fs::read_to_string("/etc/shells").unwrap_or_default();
        if !shells.lines().any(|l| l.trim() == ash) {
            let _ = std::fs::write("/etc/shells", format!("{shells}{ash}\n"));
        }
        for (user, shell) in [
            (USER, "/bin/sh"),
            (BASH_USER, "/bin/bash"),
            (ASH_USER, ash.as_str()),
            (ZSH_USER, "/usr/bin/zsh"),
        ] {
            if !Path::new(shell).exists() {
                eprintln!("SKIPPED: account {user}: no {shell}");
                continue;
            }
            let exists = Command::new("id")
                .arg(user)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !exists {
                let ok = Command::new("useradd")
                    .args(["-m", "-s", shell, user])
                    .status()
                    .expect("useradd");
                assert!(ok.success(), "useradd {user} failed");
            }
            let mut c = Command::new("chpasswd")
                .stdin(Stdio::piped())
                .spawn()
                .expect("chpasswd");
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(format!("{user}:{PASSWORD}\n").as_bytes())
                .expect("write");
            assert!(c.wait().expect("chpasswd").success(), "chpasswd failed");
            // A stock zsh account has a .zshrc (else zsh runs its new-user menu at login).
            if user == ZSH_USER {
                let rc = format!("/home/{user}/.zshrc");
                if !Path::new(&rc).exists() {
                    let _ = std::fs::write(&rc, "# written by hostler's tests\n");
                }
            }
        }
    });
}

fn wait_listening(port: u16) -> bool {
    wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// A running sshd.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts sshd with password, keyboard-interactive (PAM) and key logins for [`USER`];
    /// `extra` adds `-o` options, e.g. `PasswordAuthentication=no`.
    pub fn start(extra: &[&str]) -> Option<Sshd> {
        if !can_run("/usr/sbin/sshd", "a real OpenSSH server for the ssh tests") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        // sshd reads authorized_keys as the user: the folder must be readable.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let hk = dir.path().join("host_key");
        keygen(&hk, "");
        std::fs::write(dir.path().join("authorized_keys"), "").expect("authorized_keys");
        let cfg = dir.path().join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "ListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM yes\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n\
                 PubkeyAuthentication yes\nAuthorizedKeysFile {}\nAllowUsers {USER} {BASH_USER} {ASH_USER} {ZSH_USER}\n\
                 StrictModes no\nLogLevel INFO\nMaxStartups 200\nMaxSessions 50\n",
                hk.display(),
                dir.path().join("authorized_keys").display()
            ),
        )
        .expect("sshd_config");
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.arg("-D")
            .arg("-f")
            .arg(&cfg)
            .arg("-p")
            .arg(port.to_string())
            .arg("-E")
            .arg(dir.path().join("log"));
        for o in extra {
            cmd.arg("-o").arg(o);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { child, port, dir };
        assert!(wait_listening(port), "sshd did not listen: {}", sshd.log());
        Some(sshd)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The host key's fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .expect("ssh-keygen -l");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string()
    }

    /// A new client key (with `passphrase`, possibly empty) the server accepts.
    pub fn client_key(&self, name: &str, passphrase: &str) -> PathBuf {
        let key = self.dir.path().join(name);
        keygen(&key, passphrase);
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
        let auth = self.dir.path().join("authorized_keys");
        let mut all = std::fs::read_to_string(&auth).unwrap_or_default();
        all.push_str(&public);
        std::fs::write(&auth, all).expect("authorized_keys");
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        key
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path, passphrase: &str) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(ok.success(), "ssh-keygen failed");
}

/// A running busybox telnetd that logs in through /bin/login.
pub struct Telnetd {
    child: Child,
    pub port: u16,
}

impl Telnetd {
    pub fn start() -> Option<Telnetd> {
        Telnetd::start_program(Path::new("/bin/login"))
    }

    /// busybox telnetd running `program` for each connection instead of /bin/login (a
    /// router-style CLI, say).
    pub fn start_program(program: &Path) -> Option<Telnetd> {
        if !can_run("/bin/busybox", "busybox telnetd for the telnet tests") {
            return None;
        }
        let port = free_port();
        let child = Command::new("/bin/busybox")
            .args(["telnetd", "-F", "-b", "127.0.0.1", "-l"])
            .arg(program)
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start telnetd");
        let t = Telnetd { child, port };
        assert!(wait_listening(port), "telnetd did not listen");
        Some(t)
    }
}

impl Drop for Telnetd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// openssl s_server with a fresh self-signed certificate for `localhost` (valid `days`),
/// answering HTTPS (`-www`) on a free loopback port; stopped on drop.
pub struct TlsServer {
    child: Child,
    pub port: u16,
    pub cert: PathBuf,
}

impl TlsServer {
    pub fn start(dir: &Path, days: u32) -> Option<TlsServer> {
        if !have("/usr/bin/openssl", "openssl s_server as a real TLS peer") {
            return None;
        }
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days"])
            .arg(days.to_string())
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl req");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        // Another test may take the port between our probe and its bind: a server that exits
        // at once is started again on another.
        let log = dir.join("s_server.log");
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("openssl")
                .args(["s_server", "-quiet", "-www", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(&cert)
                .arg("-key")
                .arg(&key)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"))
                .spawn()
                .expect("s_server");
            let up = wait_for(Duration::from_secs(10), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || child.try_wait().ok().flatten().is_some()
            });
            if up && child.try_wait().ok().flatten().is_none() {
                return Some(TlsServer { child, port, cert });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "openssl s_server did not listen: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
