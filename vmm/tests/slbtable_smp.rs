//! The SLB words table searched without a lock while another thread
//! changes it, as a processor's segment-miss fast path searches the table
//! of the space it runs while another processor maps and unmaps segments
//! of that space: every search finds a whole entry of that ESID, or none;
//! never a key with another segment's `rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use arch_ppc64::addr::{Esid, Vsid};
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::slbtable::{search, SlbTable, TableRef};

const ESIDS: u64 = 24;
const VERSIONS: u64 = 1 << 12;

/// The entry of `esid` at `version`: its VSID names both, so a reader can
/// tell which ESID an `rs` belongs to.
fn entry(esid: u64, version: u64) -> SlbEntry {
    SlbEntry::new(
        Esid::new(esid),
        Vsid::new(esid * VERSIONS + version % VERSIONS),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap()
}

fn esid_of_rs(rs: u64) -> u64 {
    (rs >> 12) / VERSIONS
}

#[test]
fn lockless_searches_see_whole_entries_while_the_table_changes() {
    let mut table = SlbTable::new();
    // Start full, so readers find entries from their first search on.
    for esid in 1..=ESIDS {
        assert!(table.insert(entry(esid, 0)));
    }
    table.release_retired();
    // Where the table is, as the writer last "published" it; readers take
    // it the way a processor takes a shootdown's new table.
    let published = Mutex::new(table.raw());
    let stop = AtomicBool::new(false);
    let found = AtomicU64::new(0);
    let searches = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (published, stop, found, searches) = (&published, &stop, &found, &searches);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let t: TableRef = *published.lock().unwrap();
                    searches.fetch_add(ESIDS, Ordering::Relaxed);
                    for esid in 1..=ESIDS {
                        // SAFETY: the writer releases retired storage only
                        // after the readers stopped, and the table lives
                        // until the scope ends.
                        if let Some(w) = unsafe { search(t, Esid::new(esid)) } {
                            assert_eq!(w.entry().esid(), Esid::new(esid));
                            assert_eq!(esid_of_rs(w.rs), esid, "mixed entry {w:?}");
                            n += 1;
                        }
                    }
                }
                found.fetch_add(n, Ordering::Relaxed);
            });
        }
        // The writer: inserts, replaces and removes, growing and shrinking
        // the table, publishing each new place, until the readers have
        // searched a good number of times alongside it.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for version in 0u64.. {
            if version >= 20_000 && searches.load(Ordering::Relaxed) >= 50_000 {
                break;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let esid = 1 + x % ESIDS;
            if x & 0x100 == 0 && table.get(Esid::new(esid)).is_some() {
                table.remove(Esid::new(esid));
            } else {
                assert!(table.insert(entry(esid, version)));
            }
            *published.lock().unwrap() = table.raw();
        }
        stop.store(true, Ordering::Release);
    });
    table.release_retired();
    assert!(found.load(Ordering::Relaxed) > 0);
}
