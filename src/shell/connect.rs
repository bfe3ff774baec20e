//! `:connect HOST`: the terminal relayed to a session's transport until the escape key
//! (Ctrl-]) or the end of the session, the remote terminal sized as the operator's window. Written over [`Transport`], so every transport that
//! hostler has can be connected to: local processes, telnet and ssh.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::termios::{self, SetArg};

use crate::session::{Recv, Transport};

/// The escape key: Ctrl-], as telnet(1) has it.
pub const ESCAPE: u8 = 0x1d;

/// Relays stdin to `t` and `t` to stdout until the escape key or the end of the session.
pub fn relay(t: &mut dyn Transport) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(orig) = &saved {
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
    }
    let result = pump(t);
    if let Some(orig) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, orig);
    }
    result
}

/// The operator's terminal size (columns, rows), if stdout is a terminal.
fn window() -> Option<(u16, u16)> {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .map(|w| (w.ws_col, w.ws_row))
}

fn pump(t: &mut dyn Transport) -> anyhow::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    // The remote terminal takes the operator's size, and follows it when the window changes
    // (read each turn of the loop: a cheap ioctl, and no signal handler to install).
    let mut size = None;
    loop {
        let now = window();
        if now.is_some() && now != size {
            size = now;
            if let Some((cols, rows)) = now {
                t.resize(cols, rows)?;
            }
        }
        if crate::session::local_wait_readable(&std::io::stdin(), Duration::from_millis(10))? {
            let n = stdin.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            if let Some(i) = buf[..n].iter().position(|&b| b == ESCAPE) {
                t.send(&buf[..i])?;
                return Ok(());
            }
            t.send(&buf[..n])?;
        }
        loop {
            match t.recv(&mut buf, Duration::from_millis(1))? {
                Recv::Data(n) => {
                    stdout.write_all(&buf[..n])?;
                    stdout.flush()?;
                }
                Recv::Eof => return Ok(()),
                Recv::Timeout => break,
            }
        }
    }
}
