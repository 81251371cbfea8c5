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
//!
//! A waiter spins on the lock word for a while before it confers its time
//! slice ([`set_spin_limit`]).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::this_cpu;

/// Loads of the lock word a waiter makes before it gives its time slice
/// away ([`super::relax`]): [`SPINS_ALONE`] while every vCPU has a host
/// thread of its own (the holder runs on while the waiter spins, and a
/// confer costs the waiter a trip through QEMU's vCPU loop: with 200
/// spins two processors faulting at once did less than one alone), but
/// [`SPINS_TAKING_TURNS`] where the vCPUs take turns on one host thread
/// (`-icount`), where the holder only runs once the waiter gives way.
static SPIN_LIMIT: AtomicU32 = AtomicU32::new(SPINS_ALONE);

/// See [`SPIN_LIMIT`].
pub const SPINS_ALONE: u32 = 20_000;
/// See [`SPIN_LIMIT`].
pub const SPINS_TAKING_TURNS: u32 = 200;

/// Sets how long a waiter spins before it confers (see [`SPIN_LIMIT`]).
pub fn set_spin_limit(spins: u32) {
    SPIN_LIMIT.store(spins, Ordering::Relaxed);
}

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
        self.lock_as(this_cpu())
    }

    /// [`CpuLock::lock`] for a caller that knows it runs on CPU `me`.
    #[inline]
    pub fn lock_as(&self, me: usize) -> CpuLockGuard<'_, T> {
        let tag = me as u64 + 1;
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
                    // A short wait on the word first: the holders' critical
                    // sections are short, and giving the slice away costs
                    // the waiter a trip through the hypervisor.
                    let limit = SPIN_LIMIT.load(Ordering::Relaxed);
                    let mut n = 0;
                    while self.owner.load(Ordering::Relaxed) != 0 && n < limit {
                        core::hint::spin_loop();
                        n += 1;
                    }
                    if n == limit {
                        super::relax();
                    }
                }
            }
        }
    }

    /// Whether no processor holds the lock (a sequentially consistent
    /// load: the VMM's readers pair it with their count, see
    /// `crate::mm`).
    #[inline]
    pub fn is_free(&self) -> bool {
        self.owner.load(Ordering::SeqCst) == 0
    }

    /// The data, without the lock.
    ///
    /// # Safety
    ///
    /// The caller must exclude every holder by other means for as long
    /// as it uses the pointer (the VMM's read side does: a writer waits
    /// for readers before it touches the data).
    #[inline]
    pub unsafe fn data_unlocked(&self) -> *mut T {
        self.data.get()
    }

    /// The CPU holding the lock, if any.
    pub fn owner(&self) -> Option<usize> {
        match self.owner.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t as usize - 1),
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
