//! Telnet (RFC 854) under the expect engine: a sans-IO [`Codec`] and a [`Telnet`] transport
//! over TCP.
//!
//! The codec is written here rather than taken from libmudtelnet: its 2.0.2 release drops the
//! data after an escaped IAC (`ab IAC IAC cd` gives only `ab`) and buffers an unterminated
//! subnegotiation without bound, and both are inputs a monitoring tool must survive.
//!
//! What the codec does:
//! - data: `IAC IAC` is a literal 255; `CR NUL` becomes `CR` (also across reads); `CR LF` stays;
//! - options: the peer may ECHO and SGA (we answer DO); we will SGA, TTYPE (`DUMB`: no escapes for scripts to read past) and NAWS
//!   (200x50); everything else is refused once per request (DONT/WONT);
//! - a subnegotiation is capped at [`SB_MAX`] bytes; one cut short by a stray `IAC x` is dropped
//!   and `x` is read as the command it is;
//! - sending: 255 is doubled, a bare LF becomes `CR LF` and a bare CR `CR NUL`, as an NVT wants.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::transport::{Recv, Transport, connect_tcp};

pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
pub const SB: u8 = 250;
pub const SE: u8 = 240;
pub const ECHO: u8 = 1;
pub const SGA: u8 = 3;
pub const TTYPE: u8 = 24;
pub const NAWS: u8 = 31;

/// The longest subnegotiation kept; the rest of a longer one is dropped.
pub const SB_MAX: usize = 512;
/// The terminal size announced with NAWS: wide, so command echoes do not wrap.
const COLS: u8 = 200;
const ROWS: u8 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    Opt(u8),
    Sb,
    SbData(u8),
    SbIac(u8),
}

/// The telnet protocol, without I/O: bytes in, data and replies out.
#[derive(Debug, Clone)]
pub struct Codec {
    state: State,
    sb: Vec<u8>,
    /// The last data byte was CR (a following NUL is dropped).
    cr: bool,
    /// Options the peer does (WILL, answered DO) and we do (DO, answered WILL).
    remote: [bool; 256],
    local: [bool; 256],
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            state: State::Data,
            sb: Vec::new(),
            cr: false,
            remote: [false; 256],
            local: [false; 256],
        }
    }
}

impl Codec {
    pub fn new() -> Codec {
        Codec::default()
    }

    /// Whether the peer echoes what we send (it agreed to WILL ECHO).
    pub fn remote_echo(&self) -> bool {
        self.remote[usize::from(ECHO)]
    }

    /// Decodes `input`: appends the data to `data` and the protocol answers to `reply`.
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        for &b in input {
            self.state = match self.state {
                State::Data if b == IAC => State::Iac,
                State::Data => {
                    if !(self.cr && b == 0) {
                        data.push(b);
                    }
                    self.cr = b == b'\r';
                    State::Data
                }
                State::Iac => self.command(b, data),
                State::Opt(cmd) => {
                    self.negotiate(cmd, b, reply);
                    State::Data
                }
                State::Sb => {
                    self.sb.clear();
                    State::SbData(b)
                }
                State::SbData(opt) if b == IAC => State::SbIac(opt),
                State::SbData(opt) => {
                    if self.sb.len() < SB_MAX {
                        self.sb.push(b);
                    }
                    State::SbData(opt)
                }
                State::SbIac(opt) if b == IAC => {
                    if self.sb.len() < SB_MAX {
                        self.sb.push(IAC);
                    }
                    State::SbData(opt)
                }
                State::SbIac(opt) if b == SE => {
                    self.subnegotiation(opt, reply);
                    State::Data
                }
                // A subnegotiation cut short: drop it, read `b` as the command it is.
                State::SbIac(_) => self.command(b, data),
            };
        }
    }

    /// The byte after an IAC.
    fn command(&mut self, b: u8, data: &mut Vec<u8>) -> State {
        match b {
            IAC => {
                data.push(IAC);
                self.cr = false;
                State::Data
            }
            WILL | WONT | DO | DONT => State::Opt(b),
            SB => State::Sb,
            // NOP, GA, DM, AYT, a stray SE...: nothing to do.
            _ => State::Data,
        }
    }

    fn negotiate(&mut self, cmd: u8, opt: u8, reply: &mut Vec<u8>) {
        let i = usize::from(opt);
        match cmd {
            WILL if matches!(opt, ECHO | SGA) => {
                switch(&mut self.remote[i], true, [IAC, DO, opt], reply)
            }
            WILL => reply.extend_from_slice(&[IAC, DONT, opt]),
            WONT => switch(&mut self.remote[i], false, [IAC, DONT, opt], reply),
            DO if matches!(opt, SGA | TTYPE | NAWS) => {
                switch(&mut self.local[i], true, [IAC, WILL, opt], reply);
                if opt == NAWS {
                    reply.extend_from_slice(&[IAC, SB, NAWS, 0, COLS, 0, ROWS, IAC, SE]);
                }
            }
            DO => reply.extend_from_slice(&[IAC, WONT, opt]),
            DONT => switch(&mut self.local[i], false, [IAC, WONT, opt], reply),
            _ => {}
        }
    }

    fn subnegotiation(&mut self, opt: u8, reply: &mut Vec<u8>) {
        // TTYPE SEND (1) is answered with IS (0) and our terminal type.
        if opt == TTYPE && self.local[usize::from(TTYPE)] && self.sb.first() == Some(&1) {
            reply.extend_from_slice(&[IAC, SB, TTYPE, 0]);
            reply.extend_from_slice(b"DUMB");
            reply.extend_from_slice(&[IAC, SE]);
        }
        self.sb.clear();
    }

    /// Encodes data to send: IAC doubled, bare LF as CR LF, bare CR as CR NUL.
    pub fn encode(data: &[u8], out: &mut Vec<u8>) {
        let mut prev = 0u8;
        for (i, &b) in data.iter().enumerate() {
            match b {
                IAC => out.extend_from_slice(&[IAC, IAC]),
                b'\n' if prev != b'\r' => out.extend_from_slice(b"\r\n"),
                b'\r' if data.get(i + 1) != Some(&b'\n') => out.extend_from_slice(b"\r\0"),
                _ => out.push(b),
            }
            prev = b;
        }
    }
}

/// Sets an option's state; answers only a change, so two sides cannot loop (RFC 854).
fn switch(state: &mut bool, to: bool, answer: [u8; 3], reply: &mut Vec<u8>) {
    if *state != to {
        *state = to;
        reply.extend_from_slice(&answer);
    }
}

/// A telnet connection.
pub struct Telnet {
    stream: TcpStream,
    codec: Codec,
    peer: String,
    raw: Vec<u8>,
    data: Vec<u8>,
    reply: Vec<u8>,
    /// Decoded bytes not yet handed out.
    pending: Vec<u8>,
    eof: bool,
}

impl Telnet {
    /// Connects to `address:port`, trying each resolved address within `timeout`.
    pub fn connect(address: &str, port: u16, timeout: Duration) -> io::Result<Telnet> {
        let stream = connect_tcp(address, port, timeout)?;
        stream.set_nodelay(true)?;
        // A peer that stops reading must not block a send (or a negotiation answer) forever.
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Telnet {
            stream,
            codec: Codec::new(),
            peer: format!("telnet {address}:{port}"),
            raw: vec![0; 16 * 1024],
            data: Vec::new(),
            reply: Vec::new(),
            pending: Vec::new(),
            eof: false,
        })
    }
}

impl Transport for Telnet {
    /// NAWS, when the peer asked for it: the new size in a subnegotiation.
    fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        if !self.codec.local[usize::from(NAWS)] {
            return Ok(());
        }
        let mut msg = vec![IAC, SB, NAWS];
        for b in cols.to_be_bytes().into_iter().chain(rows.to_be_bytes()) {
            // A 255 in the size is doubled, as in any subnegotiation.
            msg.push(b);
            if b == IAC {
                msg.push(IAC);
            }
        }
        msg.extend_from_slice(&[IAC, SE]);
        self.stream.write_all(&msg)
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(data.len() + 8);
        Codec::encode(data, &mut out);
        self.stream.write_all(&out)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Recv> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                return Ok(Recv::Data(n));
            }
            if self.eof {
                return Ok(Recv::Eof);
            }
            self.stream
                .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
            let n = match self.stream.read(&mut self.raw) {
                Ok(0) => {
                    self.eof = true;
                    continue;
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Ok(Recv::Timeout);
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.data.clear();
            self.reply.clear();
            self.codec
                .decode(&self.raw[..n], &mut self.data, &mut self.reply);
            if !self.reply.is_empty() {
                self.stream.write_all(&self.reply)?;
            }
            if self.data.is_empty() {
                // Only protocol bytes arrived: keep waiting, but give the caller its checks.
                return Ok(Recv::Timeout);
            }
            std::mem::swap(&mut self.pending, &mut self.data);
        }
    }

    fn close(&mut self) -> io::Result<Option<i32>> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        Ok(None)
    }

    fn describe(&self) -> String {
        self.peer.clone()
    }

    fn alive(&mut self) -> bool {
        !self.eof
    }
}
