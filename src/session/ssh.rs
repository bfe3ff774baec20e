//! SSH under the expect engine (libssh2 through the ssh2 crate, OpenSSL vendored).
//!
//! [`connect`] makes the TCP connection, the handshake, the host key check and the login;
//! the result is an [`Ssh`] transport whose interactive shell (with a pty) opens on first use,
//! and which runs single commands without a shell through [`Transport::exec`], each on its own
//! channel of the one authenticated connection.
//!
//! Authentication, in order of what the host has: a private key file (the secret is its
//! passphrase); a password, sent by the `password` method or, where the server offers only
//! `keyboard-interactive`, as the answer to its hidden prompts (what DPythOS patched OpenSSH
//! for); else the SSH agent. The host key is checked by the caller's `verify` before any
//! secret is sent; this module knows nothing of the store.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use ssh2::{
    BlockDirections, Channel, ExtendedData, HashType, HostKeyType, KeyboardInteractivePrompt,
    Prompt,
};

use super::SessionError;
use super::transport::ExecOutput;
use super::transport::{Recv, Transport, connect_tcp};

/// The terminal an interactive shell gets: wide, so command echoes do not wrap.
const PTY: (u32, u32, u32, u32) = (200, 50, 0, 0);

/// A server's host key, as pinned in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`...
    pub key_type: String,
    /// The key blob, base64.
    pub key_data: String,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
}

/// How to log in.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// The `password` method, else `keyboard-interactive` answering hidden prompts.
    Password(&'a str),
    /// A private key file and its passphrase.
    Key {
        path: &'a Path,
        passphrase: Option<&'a str>,
    },
    /// The SSH agent at `$SSH_AUTH_SOCK`.
    Agent,
}

/// Where and how to connect.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub address: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub auth: Auth<'a>,
    /// For the TCP connection, the handshake and the login, each.
    pub timeout: Duration,
}

fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// Opens the TCP connection and makes the handshake; returns the session and the host key.
fn handshake(
    address: &str,
    port: u16,
    timeout: Duration,
    peer: &str,
) -> Result<(ssh2::Session, TcpStream, HostKey), SessionError> {
    let io = |msg: String| SessionError::Io {
        peer: peer.to_string(),
        msg,
    };
    let tcp = connect_tcp(address, port, timeout).map_err(|e| io(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let poll_fd = tcp.try_clone().map_err(|e| io(e.to_string()))?;
    let mut sess = ssh2::Session::new().map_err(|e| io(e.to_string()))?;
    sess.set_timeout(ms(timeout));
    sess.set_tcp_stream(tcp);
    sess.handshake()
        .map_err(|e| io(format!("SSH handshake failed: {}", e.message())))?;
    let (blob, kind) = sess
        .host_key()
        .ok_or_else(|| io("the server sent no host key".into()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key_data = b64.encode(blob);
    let hash = sess
        .host_key_hash(HashType::Sha256)
        .ok_or_else(|| io("cannot hash the host key".into()))?;
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    );
    let key = HostKey {
        key_type: key_type_name(kind).to_string(),
        key_data,
        fingerprint,
    };
    Ok((sess, poll_fd, key))
}

/// The host key a server offers, without logging in (for `hostler host trust`).
pub fn fetch_host_key(
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<HostKey, SessionError> {
    let peer = format!("ssh {address}:{port}");
    let (sess, _, key) = handshake(address, port, timeout, &peer)?;
    let _ = sess.disconnect(None, "host key fetched", None);
    Ok(key)
}

/// Answers keyboard-interactive prompts: hidden password prompts with the password, shown ones
/// with the user name; gives up after a few rounds so a server that keeps asking cannot loop us.
struct Answer<'a> {
    user: &'a str,
    password: &'a str,
    rounds: u32,
}

impl KeyboardInteractivePrompt for Answer<'_> {
    fn prompt<'b>(
        &mut self,
        _user: &str,
        _instructions: &str,
        prompts: &[Prompt<'b>],
    ) -> Vec<String> {
        self.rounds += 1;
        if self.rounds > 3 {
            return Vec::new();
        }
        // The password goes only to a hidden prompt that asks for a password; an OTP or
        // "new password" prompt gets an empty answer, and the login fails plainly.
        prompts
            .iter()
            .map(|p| {
                let text = p.text.to_lowercase();
                if p.echo {
                    self.user.to_string()
                } else if text.contains("password") && !text.contains("new") {
                    self.password.to_string()
                } else {
                    String::new()
                }
            })
            .collect()
    }
}

/// Connects, checks the host key with `verify` and logs in.
pub fn connect(
    t: &Target<'_>,
    verify: &mut dyn FnMut(&HostKey) -> Result<(), SessionError>,
) -> Result<Ssh, SessionError> {
    let peer = format!("ssh {}@{}:{}", t.user, t.address, t.port);
    let (sess, poll_fd, key) = handshake(t.address, t.port, t.timeout, &peer)?;
    verify(&key)?;
    let auth_err = |msg: String| SessionError::Auth {
        peer: peer.clone(),
        msg,
    };
    // Asking for the methods tries "none", which some servers accept.
    let methods = sess
        .auth_methods(t.user)
        .map(str::to_string)
        .unwrap_or_default();
    if !sess.authenticated() {
        let result = match t.auth {
            Auth::Key { path, passphrase } => sess
                .userauth_pubkey_file(t.user, None, path, passphrase)
                .map_err(|e| format!("key {} refused: {}", path.display(), e.message())),
            Auth::Password(pw) if methods.split(',').any(|m| m == "password") => sess
                .userauth_password(t.user, pw)
                .map_err(|e| format!("password refused: {}", e.message())),
            Auth::Password(pw) if methods.split(',').any(|m| m == "keyboard-interactive") => {
                let mut answer = Answer {
                    user: t.user,
                    password: pw,
                    rounds: 0,
                };
                sess.userauth_keyboard_interactive(t.user, &mut answer)
                    .map_err(|e| format!("keyboard-interactive refused: {}", e.message()))
            }
            Auth::Password(_) => Err(format!(
                "the server offers neither password nor keyboard-interactive (it offers: {methods})"
            )),
            Auth::Agent => sess
                .userauth_agent(t.user)
                .map_err(|e| format!("no key from the SSH agent was accepted: {}", e.message())),
        };
        result.map_err(&auth_err)?;
        if !sess.authenticated() {
            return Err(auth_err(format!(
                "authentication failed (the server offers: {methods})"
            )));
        }
    }
    Ok(Ssh {
        sess,
        poll_fd,
        shell: None,
        peer,
        timeout: t.timeout,
    })
}

/// An authenticated SSH connection.
pub struct Ssh {
    sess: ssh2::Session,
    poll_fd: TcpStream,
    shell: Option<Channel>,
    peer: String,
    timeout: Duration,
}

fn ssh_io(e: ssh2::Error) -> io::Error {
    io::Error::other(e.message().to_string())
}

impl Ssh {
    /// The interactive shell channel, opened (with a pty) on first use.
    fn shell(&mut self) -> io::Result<&mut Channel> {
        if self.shell.is_none() {
            self.sess.set_blocking(true);
            let mut ch = self.sess.channel_session().map_err(ssh_io)?;
            // A dumb terminal: no colours, no bracketed paste, no title escapes for scripts to
            // read past (`:connect` tells the shell the operator's own terminal).
            ch.request_pty("dumb", None, Some(PTY)).map_err(ssh_io)?;
            ch.handle_extended_data(ExtendedData::Merge)
                .map_err(ssh_io)?;
            ch.shell().map_err(ssh_io)?;
            self.shell = Some(ch);
        }
        self.shell
            .as_mut()
            .ok_or_else(|| io::Error::other("no shell"))
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on.
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut flags = PollFlags::empty();
        let dirs = self.sess.block_directions();
        if matches!(
            dirs,
            BlockDirections::Inbound | BlockDirections::Both | BlockDirections::None
        ) {
            flags |= PollFlags::POLLIN;
        }
        if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
            flags |= PollFlags::POLLOUT;
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.poll_fd.as_fd(), flags)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

impl Transport for Ssh {
    fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        let (c, r) = (u32::from(cols), u32::from(rows));
        self.sess.set_blocking(true);
        self.sess.set_timeout(ms(self.timeout));
        match self.shell.as_mut() {
            Some(ch) => ch.request_pty_size(c, r, None, None).map_err(ssh_io),
            None => Ok(()),
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.sess.set_blocking(true);
        self.sess.set_timeout(ms(self.timeout));
        let ch = self.shell()?;
        ch.write_all(data)?;
        ch.flush()
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Recv> {
        self.shell()?;
        let end = Instant::now() + timeout;
        self.sess.set_blocking(false);
        let result = loop {
            let Some(ch) = self.shell.as_mut() else {
                break Ok(Recv::Eof);
            };
            match ch.read(buf) {
                Ok(0) if ch.eof() => break Ok(Recv::Eof),
                Ok(0) => {}
                Ok(n) => break Ok(Recv::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break Err(e),
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(Recv::Timeout);
            }
            if let Err(e) = self.wait(left) {
                break Err(e);
            }
        };
        self.sess.set_blocking(true);
        result
    }

    fn close(&mut self) -> io::Result<Option<i32>> {
        self.sess.set_blocking(true);
        self.sess.set_timeout(2000);
        let mut code = None;
        if let Some(mut ch) = self.shell.take() {
            let _ = ch.send_eof();
            let _ = ch.close();
            if ch.wait_close().is_ok() {
                code = ch.exit_status().ok();
            }
        }
        let _ = self.sess.disconnect(None, "bye", None);
        Ok(code)
    }

    fn describe(&self) -> String {
        self.peer.clone()
    }

    fn alive(&mut self) -> bool {
        if self.shell.as_ref().is_some_and(|c| c.eof()) {
            return false;
        }
        self.sess.set_blocking(true);
        self.sess.set_timeout(ms(Duration::from_secs(5)));
        self.sess.set_keepalive(false, 1);
        self.sess.keepalive_send().is_ok()
    }

    fn exec(
        &mut self,
        command: &str,
        timeout: Duration,
        max: usize,
        stop: &dyn Fn() -> bool,
    ) -> io::Result<ExecOutput> {
        let end = Instant::now() + timeout;
        self.sess.set_blocking(true);
        self.sess.set_timeout(ms(timeout));
        let opened = self.sess.channel_session().and_then(|mut ch| {
            ch.exec(command)?;
            Ok(ch)
        });
        let mut ch = match opened {
            Ok(ch) => ch,
            Err(e) => {
                self.sess.set_timeout(ms(self.timeout));
                return Err(ssh_io(e));
            }
        };
        // Both streams are read as they come, without blocking, so neither fills its window
        // while the other is read, and the deadline and `stop` are checked between reads.
        self.sess.set_blocking(false);
        let result = (|| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                let mut progressed = false;
                for (stream, buf) in [(0, &mut out), (1, &mut err)] {
                    match ch.stream(stream).read(&mut chunk) {
                        Ok(0) => {}
                        Ok(n) => {
                            progressed = true;
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                if out.len() > max || err.len() > max {
                    return Err(io::Error::other(format!(
                        "{command:?} printed more than {max} bytes; stopped it"
                    )));
                }
                if !progressed && ch.eof() {
                    break;
                }
                if stop() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
                }
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{command:?} did not finish within {timeout:.1?}"),
                    ));
                }
                if !progressed {
                    self.wait(left.min(Duration::from_millis(100)))?;
                }
            }
            // The exit status comes with the channel's close.
            loop {
                match ch.wait_close().map_err(io::Error::from) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= end || stop() {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("{command:?} did not close within {timeout:.1?}"),
                            ));
                        }
                        self.wait(Duration::from_millis(100))?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(ExecOutput {
                code: i64::from(ch.exit_status().map_err(ssh_io)?),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            })
        })();
        if result.is_err() {
            // Best effort: tell the server to stop the command; the channel is dropped.
            let _ = ch.close();
        }
        self.sess.set_blocking(true);
        self.sess.set_timeout(ms(self.timeout));
        result
    }
}
