//! Network probes that answer with data, never an error, so "down" is a result a check reads:
//! `tcp_check(address, port[, opts])` (connect, optionally send and expect a banner) and
//! `tls_check(address, port[, opts])` (the TLS handshake and the server's certificate).
//!
//! Each opens and closes its socket inside the call, within the run's deadline.

use std::io::{Read, Write};
use std::net::TcpStream;

use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::{RunContext, current, secs, session_err};
use crate::session::net;

/// The longest banner a probe reads.
const MAX_BANNER: usize = 4096;

fn ms_since(start: Instant) -> Dynamic {
    Dynamic::from(i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX))
}

fn opt_str(opts: &Map, key: &str) -> Option<String> {
    opts.get(key)
        .filter(|v| !v.is_unit())
        .map(|v| v.to_string())
}

/// The probe's time limit: `opts.timeout` (seconds, default 10), within the run's deadline.
fn limit(ctx: &RunContext, opts: &Map) -> Result<Duration, Box<EvalAltResult>> {
    let want = match opts.get("timeout") {
        Some(t) if !t.is_unit() => secs(t)?,
        _ => Duration::from_secs(10),
    };
    ctx.guard.bound(want).map_err(session_err)
}

/// A probe's answer when it failed: `ok` false, `error` (secrets masked), `elapsed_ms`.
fn failed(ctx: &RunContext, mut m: Map, start: Instant, error: &str) -> Map {
    m.insert("ok".into(), Dynamic::from(false));
    m.insert("error".into(), Dynamic::from(ctx.mask(error)));
    m.insert("elapsed_ms".into(), ms_since(start));
    m
}

/// The longest a probe waits before it looks whether its run was cancelled or ran out.
const SLICE: Duration = Duration::from_millis(200);

/// Connects (the name's lookup included) on the run's own thread, in slices, so that a
/// cancellation or the run's end interrupts it at once: the outer Err ends the run, the inner
/// is the probe's.
fn interruptible_connect(
    ctx: &RunContext,
    address: &str,
    port: i64,
    timeout: Duration,
) -> Result<Result<TcpStream, String>, Box<EvalAltResult>> {
    let Ok(port) = u16::try_from(port) else {
        return Ok(Err(format!("port {port} is out of range")));
    };
    let start = Instant::now();
    let addrs = match net::resolve(&ctx.guard, address, port, timeout).map_err(session_err)? {
        Ok(a) if a.is_empty() => return Ok(Err(format!("{address} has no address"))),
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let left = timeout.saturating_sub(start.elapsed());
    let stream = match net::connect(&ctx.guard, &addrs, left).map_err(session_err)? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let t = timeout.max(Duration::from_millis(1));
    let _ = stream.set_read_timeout(Some(t));
    let _ = stream.set_write_timeout(Some(t));
    Ok(Ok(stream))
}

fn tcp_check(
    ctx: &RunContext,
    address: &str,
    port: i64,
    opts: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    let timeout = limit(ctx, opts)?;
    let start = Instant::now();
    let mut m = Map::new();
    let fail = |m: Map, error: String| Ok(failed(ctx, m, start, &error));
    let mut stream = match interruptible_connect(ctx, address, port, timeout)? {
        Ok(s) => s,
        Err(e) => return fail(m, e),
    };
    m.insert("connect_ms".into(), ms_since(start));
    if let Some(send) = opt_str(opts, "send")
        && let Err(e) = stream.write_all(send.as_bytes())
    {
        return fail(m, format!("sending: {e}"));
    }
    let mut banner = String::new();
    if let Some(pattern) = opt_str(opts, "expect") {
        let re = super::util::regex(&pattern)?;
        let mut buf = [0u8; 1024];
        let mut seen = Vec::new();
        // One deadline for the whole answer: a peer that drips a byte at a time cannot hold
        // the run longer than the timeout.
        let end = start + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                m.insert("banner".into(), Dynamic::from(ctx.mask(&banner)));
                return fail(
                    m,
                    format!("no {pattern:?} in the answer within the timeout"),
                );
            }
            // In slices, so a cancellation or the run's end interrupts the wait.
            ctx.guard.check().map_err(session_err)?;
            let _ = stream.set_read_timeout(Some(left.min(SLICE)));
            match stream.read(&mut buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) && Instant::now() < end =>
                {
                    continue;
                }
                Ok(0) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    banner = String::from_utf8_lossy(&seen).into_owned();
                    if re.is_match(&banner) || seen.len() >= MAX_BANNER {
                        break;
                    }
                }
                Err(e) => {
                    m.insert("banner".into(), Dynamic::from(ctx.mask(&banner)));
                    let why = if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        " within the timeout".to_string()
                    } else {
                        format!(": {e}")
                    };
                    return fail(m, format!("no {pattern:?} in the answer{why}"));
                }
            }
        }
        m.insert("banner".into(), Dynamic::from(ctx.mask(&banner)));
        if !re.is_match(&banner) {
            return fail(m, format!("the answer does not match {pattern:?}"));
        }
    }
    m.insert("ok".into(), Dynamic::from(true));
    m.insert("error".into(), Dynamic::from(String::new()));
    m.insert("elapsed_ms".into(), ms_since(start));
    Ok(m)
}

/// An ASN.1 time as epoch milliseconds.
fn epoch_ms(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, String> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let d = epoch.diff(t).map_err(|e| e.to_string())?;
    Ok((i64::from(d.days) * 86_400 + i64::from(d.secs)) * 1000)
}

fn names(n: &openssl::x509::X509NameRef) -> String {
    n.entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn tls_check(
    ctx: &RunContext,
    address: &str,
    port: i64,
    opts: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let timeout = limit(ctx, opts)?;
    let start = Instant::now();
    let mut m = Map::new();
    let fail = |m: Map, error: String| Ok(failed(ctx, m, start, &error));
    let name = opt_str(opts, "server_name").unwrap_or_else(|| address.to_string());
    let stream = match interruptible_connect(ctx, address, port, timeout)? {
        Ok(s) => s,
        Err(e) => return fail(m, e),
    };
    // The handshake goes on whatever the chain says, so an expired or self-signed certificate
    // is still read; `verified` and `verify_error` say what the check of the chain found.
    let connector = match SslConnector::builder(SslMethod::tls_client()) {
        Ok(mut b) => {
            b.set_verify(SslVerifyMode::NONE);
            b.build()
        }
        Err(e) => return fail(m, format!("TLS: {e}")),
    };
    let ssl = match connector
        .configure()
        .and_then(|c| c.verify_hostname(true).into_ssl(&name))
    {
        Ok(ssl) => ssl,
        Err(e) => return fail(m, format!("TLS: {e}")),
    };
    // The handshake on a non-blocking socket, waited on with one deadline: a peer that drips
    // its handshake cannot hold the run past the timeout.
    if let Err(e) = stream.set_nonblocking(true) {
        return fail(m, format!("TLS: {e}"));
    }
    let fd = match stream.try_clone() {
        Ok(fd) => fd,
        Err(e) => return fail(m, format!("TLS: {e}")),
    };
    let end = start + timeout;
    let mut attempt = ssl.connect(stream);
    let tls = loop {
        match attempt {
            Ok(t) => break t,
            Err(openssl::ssl::HandshakeError::WouldBlock(mid)) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return fail(m, format!("TLS handshake with {address}:{port}: timed out"));
                }
                ctx.guard.check().map_err(session_err)?;
                if mid.error().code() == openssl::ssl::ErrorCode::WANT_READ {
                    let _ = crate::session::local_wait_readable(&fd, left.min(SLICE));
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
                attempt = mid.handshake();
            }
            Err(e) => return fail(m, format!("TLS handshake with {address}:{port}: {e}")),
        }
    };
    let Some(cert) = tls.ssl().peer_certificate() else {
        return fail(m, "the server sent no certificate".into());
    };
    let verify = tls.ssl().verify_result();
    let not_after = epoch_ms(cert.not_after()).map_err(|e| super::rt(format!("tls_check: {e}")))?;
    let now = crate::store::now_ms();
    m.insert("ok".into(), Dynamic::from(true));
    m.insert("error".into(), Dynamic::from(String::new()));
    m.insert(
        "verified".into(),
        Dynamic::from(verify == openssl::x509::X509VerifyResult::OK),
    );
    m.insert(
        "verify_error".into(),
        Dynamic::from(if verify == openssl::x509::X509VerifyResult::OK {
            String::new()
        } else {
            verify.error_string().to_string()
        }),
    );
    m.insert("not_after_ms".into(), Dynamic::from(not_after));
    m.insert(
        "days_left".into(),
        Dynamic::from(not_after.saturating_sub(now).div_euclid(86_400_000)),
    );
    m.insert("subject".into(), Dynamic::from(names(cert.subject_name())));
    m.insert("issuer".into(), Dynamic::from(names(cert.issuer_name())));
    m.insert("elapsed_ms".into(), ms_since(start));
    Ok(m)
}

pub fn register(engine: &mut Engine) {
    engine.register_fn("tcp_check", |a: &str, p: i64| {
        tcp_check(&*current()?, a, p, &Map::new())
    });
    engine.register_fn("tcp_check", |a: &str, p: i64, o: Map| {
        tcp_check(&*current()?, a, p, &o)
    });
    engine.register_fn("tls_check", |a: &str, p: i64| {
        tls_check(&*current()?, a, p, &Map::new())
    });
    engine.register_fn("tls_check", |a: &str, p: i64, o: Map| {
        tls_check(&*current()?, a, p, &o)
    });
}
