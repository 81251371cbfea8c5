//! Reduced models of the SMP protocols of the SLB, model-checked with
//! loom over every interleaving their threads allow (loom needs its own
//! atomics, so each model restates the protocol; keep them in step with
//! the code they name). First, the SLB shootdown (see `vmm::vm::cpu`):
//!
//! * the requester holds the manager's lock, posts the request to the
//!   target's mailbox and waits until the target has applied it; only then
//!   does its operation return (here: set `returned`);
//! * the target takes requests between its accesses and while it spins for
//!   the manager's lock (as a kernel does with external interrupts enabled
//!   while it waits), and checks before each access that, if the
//!   operation has returned, its own SLB no longer holds the entry.
//!
//! If the protocol allowed an access through the old entry after the
//! operation returned, the target's assertion fails in some interleaving;
//! if it allowed a deadlock (the target spinning for the lock without
//! taking requests), loom stops the model as one that cannot make
//! progress. Both mutations were checked to fail this test.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The shared part: the manager's lock, the target's mailbox and the
/// count the requester waits on.
struct Shared {
    lock: AtomicBool,
    mailbox: AtomicBool,
    pending: AtomicUsize,
    returned: AtomicBool,
}

impl Shared {
    fn try_lock(&self) -> bool {
        self.lock
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self) {
        self.lock.store(false, Ordering::Release);
    }
}

/// The target's private SLB: whether it still holds the entry.
struct Target {
    holds_entry: bool,
    applied: usize,
}

impl Target {
    /// Takes a pending request, if any (the IPI handler).
    fn take_ipis(&mut self, s: &Shared) {
        if s.mailbox.load(Ordering::Relaxed) && s.mailbox.swap(false, Ordering::Acquire) {
            self.holds_entry = false;
            self.applied += 1;
            s.pending.fetch_sub(1, Ordering::Release);
        }
    }

    /// An access: through the entry it holds, which must be gone once the
    /// requester's operation has returned.
    fn access(&mut self, s: &Shared) {
        self.take_ipis(s);
        let returned = s.returned.load(Ordering::Acquire);
        assert!(
            !(returned && self.holds_entry),
            "access through an entry the returned operation removed"
        );
    }

    /// A fault: the manager's lock, taking requests while it is busy.
    fn fault(&mut self, s: &Shared) {
        while !s.try_lock() {
            self.take_ipis(s);
            thread::yield_now();
        }
        s.unlock();
    }
}

#[test]
fn a_detach_returns_only_after_the_other_processor_dropped_the_entry() {
    // The spin loops make the full state space unbounded; bounding the
    // preemptions still covers every order of the protocol's steps.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.max_branches = 20_000;
    model.check(|| {
        let s = Arc::new(Shared {
            lock: AtomicBool::new(false),
            mailbox: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            returned: AtomicBool::new(false),
        });
        let requester = {
            let s = s.clone();
            thread::spawn(move || {
                while !s.try_lock() {
                    thread::yield_now();
                }
                // Under the lock: change the tables, then shoot down.
                s.pending.store(1, Ordering::Relaxed);
                s.mailbox.store(true, Ordering::Release);
                while s.pending.load(Ordering::Acquire) != 0 {
                    thread::yield_now();
                }
                s.unlock();
                s.returned.store(true, Ordering::Release);
            })
        };
        let mut target = Target {
            holds_entry: true,
            applied: 0,
        };
        // The target runs on: an access, a fault that needs the lock, and
        // accesses until it has taken the request.
        target.access(&s);
        target.fault(&s);
        while target.applied == 0 {
            target.access(&s);
            thread::yield_now();
        }
        target.access(&s);
        requester.join().unwrap();
        target.access(&s);
        assert_eq!(target.applied, 1);
        assert!(!target.holds_entry);
    });
}

/// The SLB words table's entry protocol (`vmm::slbtable`, "Readers on
/// other processors"), reduced to one entry: the writer replaces segment
/// A's words with segment B's, key-last with the key cleared first; a
/// reader on another processor searching for either key must get that
/// segment's `rs` or nothing — never A's key with B's `rs` or the reverse.
mod slot {
    use loom::sync::atomic::{fence, AtomicU64, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    const KEY_A: u64 = 0x10;
    const RS_A: u64 = 0xa;
    const KEY_B: u64 = 0x20;
    const RS_B: u64 = 0xb;

    struct Slot {
        key: AtomicU64,
        rs: AtomicU64,
    }

    fn write(s: &Slot, key: u64, rs: u64) {
        s.key.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        s.rs.store(rs, Ordering::Relaxed);
        fence(Ordering::Release);
        s.key.store(key, Ordering::Relaxed);
    }

    /// One probe of the entry for `key`: `Some(rs)`, `None` (a miss: the
    /// full path decides), or a retry when it changed under the reader.
    fn search(s: &Slot, key: u64) -> Option<u64> {
        loop {
            if s.key.load(Ordering::Acquire) != key {
                return None;
            }
            let rs = s.rs.load(Ordering::Acquire);
            if s.key.load(Ordering::Relaxed) == key {
                return Some(rs);
            }
            thread::yield_now();
        }
    }

    #[test]
    fn a_reader_never_sees_one_segment_key_with_another_segment_rs() {
        loom::model(|| {
            let s = Arc::new(Slot {
                key: AtomicU64::new(KEY_A),
                rs: AtomicU64::new(RS_A),
            });
            let writer = {
                let s = s.clone();
                thread::spawn(move || write(&s, KEY_B, RS_B))
            };
            for (key, rs) in [(KEY_A, RS_A), (KEY_B, RS_B)] {
                if let Some(seen) = search(&s, key) {
                    assert_eq!(seen, rs, "key {key:#x} with the other segment's rs");
                }
            }
            writer.join().unwrap();
            assert_eq!(search(&s, KEY_B), Some(RS_B));
        });
    }
}
