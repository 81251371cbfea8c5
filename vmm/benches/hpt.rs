//! HPT and fault-path benchmarks. Each figure sits beside
//! `baseline/pteg_touch`, the bare cost of reading one PTEG's 8 entries
//! from the same in-memory table in the same run, so results from
//! different machines can be compared as multiples of it.
//!
//! Run with `cargo bench -p vmm`.

// criterion_group!/criterion_main! generate public items without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Ptex};
use arch_ppc64::structures::hpte::Pp;
use arch_ppc64::structures::slb::SlbFlags;
use arch_ppc64::structures::{PageSize, SegmentSize};
use criterion::{criterion_group, criterion_main, Criterion};

use arch_ppc64::registers::dsisr::DsisrFlags;
use vmm::adspace::SegKey;
use vmm::hpt::{HptManager, PageMapping, VirtualPage};
use vmm::native::NativeHpt;
use vmm::platform::{HptBackend, Interrupt, Privilege, RemoveCondition};
use vmm::segment::PageProt;
use vmm::sid::{scramble, SidKind};
use vmm::sim::{FlatPager, Machine, SimConfig};
use vmm::vm::{MapOptions, SpaceRef, Vmm};

/// QEMU's HPT for 512 MiB of RAM: 2^22 bytes, 32768 PTEGs.
const HPT_SHIFT: u32 = 22;
/// Entries present while inserts/lookups are measured: half the slots.
const PREFILL: u64 = 131_072;
/// Pages handled per timed batch in the `iter_custom` benchmarks.
const BATCH: u64 = 4096;

/// The doubleword the i-th load of a refault benchmark reads: page
/// `i % BATCH` of the segment at `SEG_EA`, at a cache line that moves with
/// `i`. Reading offset 0 of every page would put all 4096 loads in the
/// same few host cache sets (4 KiB aliasing), so the benchmarks would
/// measure the host's cache associativity rather than the fault path.
fn load_ea(i: u64) -> EffectiveAddress {
    EffectiveAddress::new(SEG_EA + ((i % BATCH) << 12) + ((i * 64) & 0xfc0))
}

/// The i-th of a family of distinct virtual pages spread over the table:
/// 64 pages per VSID, VSIDs from the SID scramble.
fn page(i: u64) -> VirtualPage {
    let vsid = arch_ppc64::addr::Vsid::new(scramble(1 + i / 64));
    VirtualPage::from_offset(vsid, (i % 64) << 12, SegmentSize::M256, PageSize::K4).unwrap()
}

fn mapping(i: u64) -> PageMapping {
    PageMapping::new(page(i), PhysAddr::new((i & 0xffff) << 12), Pp::RW_RW)
}

fn prefilled() -> HptManager<NativeHpt<Vec<u8>>> {
    let mut m = HptManager::new(NativeHpt::with_size_shift(HPT_SHIFT).unwrap()).unwrap();
    for i in 0..PREFILL {
        m.insert(&mapping(i)).unwrap();
    }
    m
}

fn hpt_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("hpt");
    let mut m = prefilled();
    let pteg_count = m.pteg_count();

    // Baseline: read the 8 entries of one (pseudo-randomly chosen) PTEG.
    let mut k = 0u64;
    g.bench_function("baseline/pteg_touch", |b| {
        b.iter(|| {
            k = k.wrapping_add(0x9e37_79b9);
            let group = PtegIndex::new(k & (pteg_count - 1));
            let mut acc = 0u64;
            for slot in 0..Ptex::SLOTS_PER_PTEG {
                acc ^= m.backend().read(group.ptex(slot)).unwrap().v;
            }
            black_box(acc)
        })
    });

    // Insert into a half-full table (each batch is removed again, untimed).
    let mut next = PREFILL;
    g.bench_function("insert", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                let maps: Vec<PageMapping> = (next..next + n).map(mapping).collect();
                next += n;
                let t = Instant::now();
                let placed: Vec<Ptex> = maps
                    .iter()
                    .map(|mp| black_box(m.insert(mp).unwrap()).ptex)
                    .collect();
                total += t.elapsed();
                for (mp, p) in maps.iter().zip(placed) {
                    m.remove(p, mp.page).unwrap();
                }
                done += n;
            }
            total
        })
    });

    // Lookup of present pages, the way the MMU searches.
    let mut j = 0u64;
    g.bench_function("lookup", |b| {
        b.iter(|| {
            j = (j + 7919) % PREFILL;
            black_box(m.lookup(page(j)).unwrap())
        })
    });

    // Remove (with the AVPN check) of entries just inserted, untimed.
    g.bench_function("remove", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                let placed: Vec<(VirtualPage, Ptex)> = (next..next + n)
                    .map(|i| (page(i), m.insert(&mapping(i)).unwrap().ptex))
                    .collect();
                next += n;
                let t = Instant::now();
                for (p, ptex) in &placed {
                    black_box(m.remove(*ptex, *p).unwrap());
                }
                total += t.elapsed();
                done += n;
            }
            total
        })
    });
    let s = m.stats();
    eprintln!(
        "hpt stats: inserts {} (secondary {}), evictions {}, removes {}",
        s.inserts, s.secondary_inserts, s.evictions, s.removes
    );
    g.finish();
}

const SEG_EA: u64 = 0x1000_0000;

fn fault_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("fault");
    let config = SimConfig {
        memory_bytes: 64 << 20,
        hpt_shift: HPT_SHIFT,
        slb_size: 32,
    };

    // Same baseline in this group, on the machine's table.
    {
        let m = Machine::new(config).unwrap();
        let hpt = m.hpt();
        let mut k = 0u64;
        g.bench_function("baseline/pteg_touch", |b| {
            b.iter(|| {
                k = k.wrapping_add(0x9e37_79b9);
                let group = PtegIndex::new(k & ((1 << (HPT_SHIFT - 7)) - 1));
                let mut acc = 0u64;
                for slot in 0..Ptex::SLOTS_PER_PTEG {
                    acc ^= hpt.read(group.ptex(slot)).unwrap().v;
                }
                black_box(acc)
            })
        });
    }

    // A load that translates without faulting, and a load whose HPTE was
    // dropped (DSI → reference pager re-inserts → retry). The loads cycle
    // over 4096 pages, so the sim's 64-entry TLB misses and each one walks
    // the SLB and both PTEGs.
    {
        let m = Machine::new(config).unwrap();
        let mut pager = FlatPager::new(&m).unwrap();
        pager
            .add_segment(
                Esid::new(1),
                arch_ppc64::addr::Vsid::new(scramble(42)),
                SegmentSize::M256,
                SlbFlags::KP,
                Pp::RW_RW,
                false,
            )
            .unwrap();
        let ea = |i: u64| EffectiveAddress::new(SEG_EA + ((i % BATCH) << 12));
        for i in 0..BATCH {
            m.store_u64(ea(i), i, Privilege::Problem, &mut pager)
                .unwrap();
        }
        let mut i = 0u64;
        g.bench_function("translate_hit_load", |b| {
            b.iter(|| {
                i += 1;
                black_box(
                    m.load_u64(load_ea(i), Privilege::Problem, &mut pager)
                        .unwrap(),
                )
            })
        });
        g.bench_function("pager_refault_load", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = BATCH.min(iters - done);
                    for p in 0..n {
                        pager.drop_translation(ea(p)).unwrap();
                    }
                    let t = Instant::now();
                    for p in 0..n {
                        black_box(
                            m.load_u64(load_ea(p), Privilege::Problem, &mut pager)
                                .unwrap(),
                        );
                    }
                    total += t.elapsed();
                    done += n;
                }
                total
            })
        });
    }

    // The real VMM: a resident page whose HPTE was lost behind its back
    // (removed directly in the table, untimed, as an eviction by another
    // CPU would) faults back in: DSI → vmm resolves → insert → retry.
    {
        let m = Machine::new(config).unwrap();
        let mut v = Vmm::new(m.hpt(), m.slb(), m.memory(), 2).unwrap();
        let sid = v
            .create_segment(SidKind::User, BATCH << 12, PageProt::USER_RW)
            .unwrap();
        let space = v.create_space();
        v.map(
            SpaceRef::User(space),
            Esid::new(1),
            sid,
            MapOptions::new(SegKey::UNPRIV),
        )
        .unwrap();
        v.switch_to(Some(space)).unwrap();
        let ea = |i: u64| EffectiveAddress::new(SEG_EA + ((i % BATCH) << 12));
        for i in 0..BATCH {
            m.store_u64(ea(i), i, Privilege::Problem, &mut v).unwrap();
        }
        let vsid = v.vsid(sid);
        let finder = HptManager::new(m.hpt()).unwrap();
        let mut table = m.hpt();
        g.bench_function("vmm_refault_load", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = BATCH.min(iters - done);
                    for p in 0..n {
                        let vp =
                            VirtualPage::new(vsid, ea(p), SegmentSize::M256, PageSize::K4).unwrap();
                        let (ptex, _) = finder.lookup(vp).unwrap().expect("resident");
                        table.remove(ptex, RemoveCondition::Absolute).unwrap();
                    }
                    let t = Instant::now();
                    for p in 0..n {
                        black_box(m.load_u64(load_ea(p), Privilege::Problem, &mut v).unwrap());
                    }
                    total += t.elapsed();
                    done += n;
                }
                total
            })
        });
        // The VMM's share of that: the same lost entries, resolved by
        // calling the fault handler with the DSI the load would raise,
        // without the emulated MMU's table walks around it.
        g.bench_function("vmm_resolve", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = BATCH.min(iters - done);
                    for p in 0..n {
                        let vp =
                            VirtualPage::new(vsid, ea(p), SegmentSize::M256, PageSize::K4).unwrap();
                        let (ptex, _) = finder.lookup(vp).unwrap().expect("resident");
                        table.remove(ptex, RemoveCondition::Absolute).unwrap();
                    }
                    let t = Instant::now();
                    for p in 0..n {
                        let dsi = Interrupt::DataStorage {
                            ea: ea(p),
                            dsisr: DsisrFlags::NOPTE,
                        };
                        v.resolve(black_box(dsi), Privilege::Problem).unwrap();
                    }
                    total += t.elapsed();
                    done += n;
                }
                total
            })
        });
        let c = v.counters();
        eprintln!("vmm counters: {c:?}");
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = hpt_benches, fault_benches
}
criterion_main!(benches);
