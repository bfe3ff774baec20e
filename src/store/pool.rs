//! The store's connections. SQLite has one writer, and beside it up to a few read-only
//! connections (WAL lets them read while it writes), opened when a read would otherwise
//! wait; on PostgreSQL a store opens more connections as they are needed (up to
//! `connections`, 4 by default); the SQL Server drivers have one. So a node's jobs, its web
//! page and its housekeeping do not wait on each other's round trips.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use super::StoreError;
use super::driver::Driver;

/// Opens one more connection like the first.
pub type Connect = Box<dyn Fn() -> Result<Box<dyn Driver>, StoreError> + Send + Sync>;

type Slot = Mutex<Option<Box<dyn Driver>>>;
type Guard<'a> = MutexGuard<'a, Option<Box<dyn Driver>>>;

pub struct Pool {
    /// Connected once first needed (the first, of a store's main pool, from the start).
    slots: Vec<Slot>,
    connect: Option<Connect>,
    /// Whose turn it is to be waited for when every connection is busy.
    turn: AtomicUsize,
    /// Connections that only read, for reads while every connection above is busy.
    readers: Option<Box<Pool>>,
}

/// A slot's lock, whether or not a panic poisoned it: the driver rolled back on unwind.
fn lock(slot: &Slot) -> Guard<'_> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

fn try_lock(slot: &Slot) -> Option<Guard<'_>> {
    match slot.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

fn run<T>(
    mut g: Guard<'_>,
    f: impl FnOnce(&mut dyn Driver) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match g.as_mut() {
        Some(d) => f(d.as_mut()),
        None => Err(StoreError::Db("the store has no connection".into())),
    }
}

impl Pool {
    /// How many connections it may hold (its readers not counted).
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    /// One connection, and no more.
    pub fn one(driver: Box<dyn Driver>) -> Pool {
        Pool::growing(driver, 1, None)
    }

    /// `first`, and up to `size` in all opened by `connect` when every open one is busy.
    pub fn growing(first: Box<dyn Driver>, size: usize, connect: Option<Connect>) -> Pool {
        let mut slots = vec![Mutex::new(Some(first))];
        slots.extend((1..size.max(1)).map(|_| Mutex::new(None)));
        Pool {
            slots,
            connect,
            turn: AtomicUsize::new(0),
            readers: None,
        }
    }

    /// Up to `size` read-only connections beside these, opened by `connect` when a read
    /// finds every connection here busy.
    pub fn with_readers(mut self, size: usize, connect: Connect) -> Pool {
        self.readers = Some(Box::new(Pool {
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            connect: Some(connect),
            turn: AtomicUsize::new(0),
            readers: None,
        }));
        self
    }

    /// A free connection without waiting: an open one, else a new one while there is room.
    fn free(&self) -> Option<Guard<'_>> {
        for slot in &self.slots {
            if let Some(g) = try_lock(slot)
                && g.is_some()
            {
                return Some(g);
            }
        }
        let connect = self.connect.as_ref()?;
        for slot in &self.slots {
            let Some(mut g) = try_lock(slot) else {
                continue;
            };
            if g.is_some() {
                continue;
            }
            match connect() {
                Ok(d) => {
                    *g = Some(d);
                    return Some(g);
                }
                Err(e) => {
                    // The open ones go on; the error shows if they fail too.
                    tracing::debug!("cannot open one more connection: {e}");
                    return None;
                }
            }
        }
        None
    }

    /// Whether the first connection is open (in use counts: only an open one is used).
    fn first_open(&self) -> bool {
        match self.slots[0].try_lock() {
            Ok(g) => g.is_some(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().is_some(),
            Err(TryLockError::WouldBlock) => true,
        }
    }

    /// The next connection to come free, taking turns (an open one).
    fn wait(&self) -> Guard<'_> {
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let g = lock(&self.slots[i]);
        if g.is_some() || i == 0 {
            return g;
        }
        drop(g);
        lock(&self.slots[0])
    }

    /// Runs `f` on a free connection: an open one, else a new one while there is room, else
    /// the next to come free.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Driver) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let g = match self.free() {
            Some(g) => g,
            None => self.wait(),
        };
        run(g, f)
    }

    /// Runs a read: on a free connection here, else on a reader (opened if need be), else
    /// on the next connection here to come free.
    pub fn with_read<T>(
        &self,
        f: impl FnOnce(&mut dyn Driver) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(g) = self.free() {
            return run(g, f);
        }
        if let Some(g) = self.readers.as_ref().and_then(|r| r.free()) {
            return run(g, f);
        }
        // Every connection busy: wait for a reader, whose reads take microseconds, not for
        // the writer, which may be in a transaction of many runs (a group commit, a claim, a
        // firing of thousands of jobs). Waiting there held job threads for 140 ms a read
        // on average at 3,000 checks a second due (28 ms waiting for a reader).
        let g = match self.readers.as_ref().filter(|r| r.first_open()) {
            Some(r) => r.wait(),
            None => self.wait(),
        };
        run(g, f)
    }
}
