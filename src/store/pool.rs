//! The store's connections. SQLite and the SQL Server drivers have one; on PostgreSQL a store
//! opens more as they are needed (up to `connections`, 4 by default), so that a node's jobs,
//! its web page and its housekeeping do not wait on each other's round trips.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use super::StoreError;
use super::driver::Driver;

/// Opens one more connection like the first.
pub type Connect = Box<dyn Fn() -> Result<Box<dyn Driver>, StoreError> + Send + Sync>;

type Slot = Mutex<Option<Box<dyn Driver>>>;

pub struct Pool {
    /// The first is always connected; the others once they were first needed.
    slots: Vec<Slot>,
    connect: Option<Connect>,
    /// Whose turn it is to be waited for when every connection is busy.
    turn: AtomicUsize,
}

/// A slot's lock, whether or not a panic poisoned it: the driver rolled back on unwind.
fn lock(slot: &Slot) -> MutexGuard<'_, Option<Box<dyn Driver>>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

fn try_lock(slot: &Slot) -> Option<MutexGuard<'_, Option<Box<dyn Driver>>>> {
    match slot.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Pool {
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
        }
    }

    /// Runs `f` on a free connection: an open one, else a new one while there is room, else
    /// the next to come free (taking turns).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Driver) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for slot in &self.slots {
            if let Some(mut g) = try_lock(slot)
                && let Some(d) = g.as_mut()
            {
                return f(d.as_mut());
            }
        }
        if let Some(connect) = &self.connect {
            for slot in &self.slots[1..] {
                let Some(mut g) = try_lock(slot) else {
                    continue;
                };
                if g.is_some() {
                    continue;
                }
                match connect() {
                    Ok(d) => {
                        let d = g.insert(d);
                        return f(d.as_mut());
                    }
                    Err(e) => {
                        // The open ones go on; the error shows if they fail too.
                        tracing::debug!("cannot open one more connection: {e}");
                        break;
                    }
                }
            }
        }
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut g = lock(&self.slots[i]);
        if g.is_none() {
            drop(g);
            g = lock(&self.slots[0]);
        }
        match g.as_mut() {
            Some(d) => f(d.as_mut()),
            None => Err(StoreError::Db("the store has no connection".into())),
        }
    }
}
