//! The web server's count of open connections, in all and per client address, and the rule
//! that makes room at the limit: a newcomer takes the place of the connection waiting longest
//! for a request head from the address that holds the most connections (if that address holds
//! more than the newcomer's would). Idle connections from a few addresses never lock out
//! another client, `/healthz` and the admin included.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use smol::channel::{Receiver, Sender};
use tracing::debug;

use super::head::Limits;

/// Connections open now, and those waiting for a request head (the only ones that may be
/// closed to make room).
#[derive(Debug, Default)]
pub struct Conns {
    total: AtomicUsize,
    state: Mutex<ConnState>,
}

#[derive(Debug, Default)]
struct ConnState {
    per_ip: HashMap<IpAddr, usize>,
    open: HashMap<u64, Open>,
    next: u64,
    /// Connections told to close that have not closed yet: past the limit by this many.
    leaving: usize,
}

/// What a connection and the count share.
#[derive(Debug)]
struct Mark {
    /// Waiting for a request's head (not in the middle of one).
    waiting: AtomicBool,
    /// Told to close to make room.
    evict: AtomicBool,
}

/// An open connection, as the count sees it.
#[derive(Debug)]
struct Open {
    ip: IpAddr,
    since: Instant,
    mark: Arc<Mark>,
    /// Wakes the connection when it is told to close.
    wake: Sender<()>,
}

/// At most this many connections may be on their way out at once, each past the limit.
const MAX_LEAVING: usize = 64;

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct Slot {
    conns: Arc<Conns>,
    ip: IpAddr,
    id: u64,
    mark: Arc<Mark>,
    evicted: Receiver<()>,
}

impl Slot {
    /// Marks the connection as waiting for a request head (it may be closed to make room),
    /// or as inside a request (it may not).
    pub fn set_waiting(&self, waiting: bool) {
        self.mark.waiting.store(waiting, Ordering::SeqCst);
    }

    /// Resolves once the connection must close to make room; never otherwise.
    pub async fn evicted(&self) {
        while !self.mark.evict.load(Ordering::SeqCst) {
            if self.evicted.recv().await.is_err() {
                // The count is gone (it never is while the slot lives): never resolve.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.total.fetch_sub(1, Ordering::SeqCst);
        let mut st = self.conns.state.lock().unwrap_or_else(|p| p.into_inner());
        st.open.remove(&self.id);
        if self.mark.evict.load(Ordering::SeqCst) {
            st.leaving = st.leaving.saturating_sub(1);
        }
        if let Some(n) = st.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Conns {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// A slot for a new connection, or None when it must be refused. At the limit, the
    /// connection that waits longest for a head, from the address holding the most
    /// connections, is told to close, if that address holds more than the newcomer's would.
    pub fn take(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mine = st.per_ip.get(&ip).copied().unwrap_or(0);
        if mine >= limits.per_client {
            return None;
        }
        if self.total.load(Ordering::SeqCst) >= limits.connections + st.leaving {
            // Those told to close count as gone, but never more than a few at once.
            if st.leaving >= MAX_LEAVING {
                return None;
            }
            let victim = st
                .open
                .iter()
                .filter(|(_, o)| {
                    o.mark.waiting.load(Ordering::SeqCst) && !o.mark.evict.load(Ordering::SeqCst)
                })
                .map(|(id, o)| (*id, st.per_ip.get(&o.ip).copied().unwrap_or(0), o.since))
                .max_by_key(|(_, held, since)| (*held, std::cmp::Reverse(*since)))
                .filter(|(_, held, _)| *held > mine + 1);
            let (id, _, _) = victim?;
            if let Some(o) = st.open.get(&id) {
                debug!(victim = %o.ip, newcomer = %ip, "web: at the connection limit, closing an idle connection");
                o.mark.evict.store(true, Ordering::SeqCst);
                let _ = o.wake.try_send(());
                st.leaving += 1;
            }
        }
        *st.per_ip.entry(ip).or_insert(0) += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        st.next += 1;
        let id = st.next;
        let mark = Arc::new(Mark {
            waiting: AtomicBool::new(true),
            evict: AtomicBool::new(false),
        });
        let (wake, evicted) = smol::channel::bounded(1);
        st.open.insert(
            id,
            Open {
                ip,
                since: Instant::now(),
                mark: mark.clone(),
                wake,
            },
        );
        Some(Slot {
            conns: self.clone(),
            ip,
            id,
            mark,
            evicted,
        })
    }
}
