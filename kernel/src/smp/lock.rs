//! [`CpuLock`]: the spin lock of the kernel's locks that may be held
//! across an SLB shootdown (the VMM's, the scheduler's).
//!
//! A processor that holds such a lock may wait for every other one to
//! answer a cross-call (the VMM shoots an SLB entry down with its lock
//! held). A waiter that spun with external interrupts off and did not
//! look at its mailbox would never answer, and the holder would never
//! release: so a waiter serves its cross-call mailbox between attempts
//! ([`super::poll`]) and gives its time slice away ([`super::relax`]).
//!
//! The lock records the CPU that holds it. A second acquire on the same
//! CPU (a fault taken while the holder runs, or a nested call) cannot be
//! waited out — the holder is the interrupted code below — so it panics,
//! naming the lock and the CPU, instead of hanging.
//!
//! Leaf locks (heap, frames, console) stay plain spin locks: their holders
//! never wait for another processor, so a waiter that does not serve its
//! mailbox only waits for a bounded critical section.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

use super::this_cpu;

/// A spin lock whose waiters serve cross-calls (see the module docs).
pub struct CpuLock<T> {
    /// 0 when free, else 1 + the holder's CPU index.
    owner: AtomicU64,
    name: &'static str,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, and one guard exists
// at a time (the owner word is taken with acquire and released with
// release ordering).
unsafe impl<T: Send> Sync for CpuLock<T> {}

/// Access to a [`CpuLock`]'s data; releases the lock when dropped.
pub struct CpuLockGuard<'a, T> {
    lock: &'a CpuLock<T>,
}

impl<T> CpuLock<T> {
    /// A free lock named `name` (in panic messages) around `data`.
    pub const fn new(name: &'static str, data: T) -> Self {
        CpuLock {
            owner: AtomicU64::new(0),
            name,
            data: UnsafeCell::new(data),
        }
    }

    /// Takes the lock, spinning (and serving this processor's cross-call
    /// mailbox) while another processor holds it.
    ///
    /// # Panics
    ///
    /// If this processor holds it already.
    #[inline]
    pub fn lock(&self) -> CpuLockGuard<'_, T> {
        let tag = this_cpu() as u64 + 1;
        match self
            .owner
            .compare_exchange(0, tag, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => CpuLockGuard { lock: self },
            Err(_) => self.lock_contended(tag),
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self, tag: u64) -> CpuLockGuard<'_, T> {
        loop {
            match self
                .owner
                .compare_exchange(0, tag, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return CpuLockGuard { lock: self },
                Err(held) if held == tag => panic!(
                    "{}: lock re-entered on CPU {} (a fault or a nested call while it holds it)",
                    self.name,
                    tag - 1
                ),
                Err(_) => {
                    super::poll();
                    super::relax();
                }
            }
        }
    }

    /// Whether the running processor holds the lock.
    #[inline]
    pub fn held_here(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == this_cpu() as u64 + 1
    }

    /// Releases the lock if the running processor holds it (a holder whose
    /// frames a failed test abandoned); returns whether it did. A lock
    /// another processor holds is left alone: that holder still runs.
    ///
    /// # Safety
    ///
    /// No code of this processor may be inside the critical section any
    /// more.
    pub unsafe fn force_unlock_here(&self) -> bool {
        let tag = this_cpu() as u64 + 1;
        self.owner
            .compare_exchange(tag, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }
}

impl<T> Deref for CpuLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the only way to the data while it lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for CpuLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for CpuLockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.owner.store(0, Ordering::Release);
    }
}
