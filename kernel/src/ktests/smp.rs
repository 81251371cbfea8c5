//! SMP (`crate::smp`): every processor of the device tree online with its
//! own index, PACA and interrupt stack; IPIs taken and acknowledged;
//! cross-calls that run on their target, including SLB shootdowns checked
//! on the remote processor with `slbfee.`; a stress loop.
//!
//! Tests about other processors skip themselves (with the reason) on a
//! one-processor machine; the rest run everywhere.

use core::sync::atomic::{AtomicU64, Ordering};

use arch_ppc64::addr::{EffectiveAddress, Esid, Vsid};
use arch_ppc64::instructions::slb;
use arch_ppc64::registers::spr::Sprg0;
use arch_ppc64::structures::slb::{esid_word, SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::bootinfo::{self, KERNEL_VIRT_BASE, MAX_CPUS};
use crate::rtas::{self, CpuState};
use crate::smp::{
    self, cross_call, cross_call_all_others, CrossCallError, Request, ShootdownError,
    SlbInvalidateList,
};
use crate::{harness, mm, trap};

/// The online processors other than the boot processor.
fn others() -> impl Iterator<Item = usize> {
    (1..MAX_CPUS).filter(|&c| smp::is_online(c))
}

/// Skips the running test on a machine with one processor.
fn need_a_second_processor() {
    if smp::online_count() < 2 {
        harness::skip("needs a second processor (qemu-run.sh --smp 2 or more)");
    }
}

fn run(cpu: usize, f: fn(u64) -> u64, arg: u64) -> u64 {
    cross_call(cpu, Request::Run { f, arg })
        .unwrap_or_else(|e| panic!("cross-call to CPU {cpu}: {e:?}"))
}

fn whoami(_: u64) -> u64 {
    smp::this_cpu() as u64
}

fn sprg0(_: u64) -> u64 {
    Sprg0::read()
}

fn stack_pointer(_: u64) -> u64 {
    let sp: u64;
    // SAFETY: copies r1.
    unsafe { core::arch::asm!("mr {0}, 1", out(reg) sp, options(nomem, nostack)) };
    sp
}

fn take_reschedule(_: u64) -> u64 {
    u64::from(smp::take_reschedule())
}

/// Segments no one maps: user-half ESIDs far from everything the tests and
/// processes use, never loaded on the boot processor.
const TEST_EA: [u64; 2] = [0x0000_0123_4000_0000, 0x0000_0123_5000_0000];
/// A VSID nobody hands out (the VMM's are below 2^35 - 1, the linear
/// map's from 2^37); nothing is ever accessed through it.
const TEST_VSID: u64 = 0x7_f0f0_0123;

/// On the running processor: loads an SLB entry for the segment of `arg`
/// (a [`TEST_EA`]) at the hardware index in its low bits, and reports
/// whether `slbfee.` then finds it (1) or not (0).
fn load_test_entry(arg: u64) -> u64 {
    let (ea, index) = (arg & !0xfff, (arg & 0xfff) as usize);
    let e = SlbEntry::new(
        Esid::of(EffectiveAddress::new(ea)),
        Vsid::new(TEST_VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KS | SlbFlags::KP,
    )
    .and_then(|e| e.with_index(index))
    .expect("test SLB entry");
    // SAFETY: an index above the linear map's entries, for an ESID nothing
    // on this (secondary) processor uses or has loaded; no access goes
    // through it.
    unsafe { slb::slbmte(e.vsid_word, e.esid_word) };
    arch_ppc64::instructions::barrier::isync();
    found(ea)
}

/// Whether `slbfee.` finds an entry for `ea` on the running processor.
fn found(ea: u64) -> u64 {
    u64::from(slb::slbfee(ea).is_some())
}

/// The hardware SLB indexes the tests load (the two highest: the linear
/// map takes the lowest).
fn test_indexes() -> [u64; 2] {
    let size = mm::layout().slb_size as u64;
    [size - 1, size - 2]
}

/// A shootdown of the segments of `eas`.
fn shootdown(eas: &[u64]) -> Request {
    let mut list = SlbInvalidateList::new();
    for &ea in eas {
        list.push(EffectiveAddress::new(ea), SegmentSize::M256)
            .expect("a user segment joins the list");
    }
    Request::SlbInvalidate(list)
}

/// Whether the running processor's linear-map entry 0 is intact.
fn linear_entry_intact(_: u64) -> u64 {
    let valid = slb::slbmfee(0) & esid_word::V != 0;
    u64::from(valid && slb::slbfee(KERNEL_VIRT_BASE).is_some())
}

kernel_test! {
    fn every_cpu_of_the_device_tree_came_online_with_its_own_index_paca_and_stack() {
        let info = bootinfo::get();
        assert!(!info.cpus.is_empty(), "no CPU in /cpus");
        let threads = info.cpus.len();
        // qemu-run.sh passes `-smp N` and `smp=N` on the command line.
        if let Some(n) = info.bootargs().split_ascii_whitespace().find_map(|w| w.strip_prefix("smp=")) {
            let n: usize = n.parse().expect("smp= is a number");
            assert_eq!(threads, n.min(MAX_CPUS), "threads in /cpus vs -smp {n}");
        }
        assert_eq!(smp::online_mask(), (1u64 << threads) - 1, "every thread found is online");
        // Index 0 is the processor running this test, which RTAS knows as
        // running (VOF's tree does not say which processor boots). Not so
        // the others: QEMU answers "stopped" for any halted vCPU, and an
        // idle secondary is halted in H_CEDE.
        assert_eq!(smp::this_cpu(), 0);
        let servers: alloc::vec::Vec<u32> = info.cpus.as_slice().iter().map(|t| t.server).collect();
        if !crate::platform::is_powernv() {
            // RTAS is pseries'.
            assert_eq!(rtas::query_cpu_stopped_state(servers[0]), Ok(CpuState::Running), "CPU 0");
        }
        for (cpu, &server) in servers.iter().enumerate() {
            assert_eq!(smp::server_of(cpu), server);
            assert!(!servers[..cpu].contains(&server), "server {server:#x} twice");
        }
        let mut stacks: alloc::vec::Vec<(u64, u64)> = alloc::vec::Vec::new();
        for cpu in 0..threads {
            assert_eq!(run(cpu, whoami, 0), cpu as u64, "CPU {cpu} knows its index");
            assert_eq!(run(cpu, sprg0, 0), trap::paca_address(cpu), "CPU {cpu}'s SPRG0 is its PACA");
            let (bottom, top) = trap::istack_of(cpu);
            assert_eq!(top - bottom, trap::INTERRUPT_STACK_BYTES as u64, "CPU {cpu}");
            assert!(trap::istack_canary_intact_of(cpu), "CPU {cpu}'s canary");
            if cpu != 0 {
                // A cross-call runs in the target's IPI handler: on its
                // own interrupt stack.
                let sp = run(cpu, stack_pointer, 0);
                assert!((bottom..top).contains(&sp), "CPU {cpu}: r1 {sp:#x} outside {bottom:#x}..{top:#x}");
            }
            assert!(stacks.iter().all(|&(b, t)| top <= b || t <= bottom), "CPU {cpu}'s stack overlaps");
            stacks.push((bottom, top));
        }
        for cpu in threads..MAX_CPUS {
            assert_eq!(cross_call(cpu, Request::Reschedule), Err(CrossCallError::Offline(cpu)));
        }
        assert_eq!(cross_call(MAX_CPUS, Request::Reschedule), Err(CrossCallError::NoSuchCpu(MAX_CPUS)));
    }

    fn an_ipi_to_each_other_cpu_is_taken_and_acknowledged() {
        need_a_second_processor();
        for cpu in others() {
            let before = smp::stats(cpu);
            // Two in a row: without the first's H_IPI 0xff and H_EOI the
            // target's CPPR would stay at the IPI's priority and the
            // second IPI would never be presented (the watchdog would end
            // the run).
            assert_eq!(cross_call(cpu, Request::Reschedule), Ok(0));
            assert_eq!(cross_call(cpu, Request::Reschedule), Ok(0));
            let after = smp::stats(cpu);
            assert!(after.ipis >= before.ipis + 2, "CPU {cpu}: IPIs {before:?} -> {after:?}");
            assert_eq!(after.served, before.served + 2, "CPU {cpu}");
            // The request took effect there, once.
            assert_eq!(run(cpu, take_reschedule, 0), 1, "CPU {cpu} was asked to reschedule");
            assert_eq!(run(cpu, take_reschedule, 0), 0, "CPU {cpu}: taken once");
        }
        assert!(!smp::take_reschedule(), "the boot processor was not asked");
    }

    fn a_cross_call_runs_on_its_target_cpu() {
        // On one processor this is the local call and an empty broadcast.
        assert_eq!(run(0, whoami, 0), 0);
        let replies = cross_call_all_others(Request::Run { f: whoami, arg: 0 }).expect("broadcast");
        for (cpu, reply) in replies.iter().enumerate() {
            let expected = (cpu != 0 && smp::is_online(cpu)).then_some(cpu as u64);
            assert_eq!(*reply, expected, "reply of CPU {cpu}");
        }
        for cpu in others() {
            assert_eq!(run(cpu, whoami, 0), cpu as u64);
        }
    }

    fn a_cross_call_may_call_its_caller_back() {
        // CPU 1 runs `call_boot_processor` in its IPI handler; that calls
        // CPU 0, which is busy waiting for CPU 1 and serves the call by
        // polling its mailbox. Inside, a third call from CPU 0 finds its
        // own slot in use.
        fn nested_on_boot_processor(_: u64) -> u64 {
            let busy = cross_call_all_others(Request::Reschedule) == Err(CrossCallError::Busy);
            (smp::this_cpu() as u64) << 1 | u64::from(busy)
        }
        fn call_boot_processor(_: u64) -> u64 {
            cross_call(0, Request::Run { f: nested_on_boot_processor, arg: 0 }).unwrap_or(u64::MAX)
        }
        need_a_second_processor();
        let cpu = others().next().expect("a second processor");
        let served = smp::stats(0).served;
        assert_eq!(run(cpu, call_boot_processor, 0), 1, "ran on CPU 0 and found its slot busy");
        assert_eq!(smp::stats(0).served, served + 1, "the boot processor served one call");
    }

    fn slb_shootdown_drops_the_entry_on_the_remote_cpu() {
        need_a_second_processor();
        let [i0, i1] = test_indexes();
        for cpu in others() {
            assert_eq!(run(cpu, load_test_entry, TEST_EA[0] | i0), 1, "CPU {cpu} loaded entry 0");
            assert_eq!(run(cpu, load_test_entry, TEST_EA[1] | i1), 1, "CPU {cpu} loaded entry 1");
            // Not on the boot processor: the SLB is per processor.
            assert_eq!(found(TEST_EA[0]), 0, "CPU 0 never loaded it");
            assert_eq!(cross_call(cpu, shootdown(&TEST_EA[..1])), Ok(0));
            assert_eq!(run(cpu, found, TEST_EA[0]), 0, "CPU {cpu} still has the shot-down segment");
            assert_eq!(run(cpu, found, TEST_EA[1]), 1, "CPU {cpu} lost the other segment too");
            assert_eq!(cross_call(cpu, shootdown(&TEST_EA[1..])), Ok(0));
            assert_eq!(run(cpu, found, TEST_EA[1]), 0, "CPU {cpu}");
            assert_eq!(run(cpu, linear_entry_intact, 0), 1, "CPU {cpu}'s linear map");
        }
    }

    fn slb_shootdown_of_every_non_bolted_entry_keeps_the_remote_linear_map() {
        need_a_second_processor();
        let [i0, i1] = test_indexes();
        for cpu in others() {
            assert_eq!(run(cpu, load_test_entry, TEST_EA[0] | i0), 1);
            assert_eq!(run(cpu, load_test_entry, TEST_EA[1] | i1), 1);
        }
        let replies = cross_call_all_others(Request::SlbInvalidateNonBolted).expect("broadcast");
        for cpu in others() {
            assert_eq!(replies[cpu], Some(0));
            assert_eq!(run(cpu, found, TEST_EA[0]), 0, "CPU {cpu}");
            assert_eq!(run(cpu, found, TEST_EA[1]), 0, "CPU {cpu}");
            assert_eq!(run(cpu, linear_entry_intact, 0), 1, "CPU {cpu}'s linear map");
        }
    }

    fn shootdown_lists_refuse_the_linear_map_and_hold_at_most_eight() {
        let mut list = SlbInvalidateList::new();
        let kernel = EffectiveAddress::new(KERNEL_VIRT_BASE + 0x40_0000);
        assert_eq!(list.push(kernel, SegmentSize::M256), Err(ShootdownError::LinearMap(kernel)));
        assert_eq!(list.push(kernel, SegmentSize::T1), Err(ShootdownError::LinearMap(kernel)));
        assert!(list.is_empty(), "a refused segment is not added");
        for n in 0..SlbInvalidateList::MAX as u64 {
            list.push(EffectiveAddress::new(n << 28), SegmentSize::M256).expect("room");
        }
        assert_eq!(list.len(), SlbInvalidateList::MAX);
        assert_eq!(list.push(EffectiveAddress::new(0x1000_0000_0000), SegmentSize::M256), Err(ShootdownError::Full));
        assert_eq!(list.len(), SlbInvalidateList::MAX);
    }

    fn a_thousand_rounds_of_cross_calls_to_all_others_complete() {
        static HITS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
        fn bump(round: u64) -> u64 {
            let n = HITS[smp::this_cpu()].fetch_add(1, Ordering::Relaxed) + 1;
            round << 32 | n
        }
        need_a_second_processor();
        const ROUNDS: u64 = 1000;
        let base: [u64; MAX_CPUS] = core::array::from_fn(|c| HITS[c].load(Ordering::Relaxed));
        let served: [u64; MAX_CPUS] = core::array::from_fn(|c| smp::stats(c).served);
        let mut runs = 0;
        for round in 0..ROUNDS {
            // Mostly functions, with shootdowns and reschedules between.
            let request = match round % 4 {
                2 => shootdown(&TEST_EA),
                3 => Request::Reschedule,
                _ => Request::Run { f: bump, arg: round },
            };
            let replies = cross_call_all_others(request).expect("broadcast");
            if let Request::Run { .. } = request {
                runs += 1;
            }
            for cpu in others() {
                let expected = match request {
                    Request::Run { .. } => round << 32 | (base[cpu] + runs),
                    _ => 0,
                };
                assert_eq!(replies[cpu], Some(expected), "round {round}, CPU {cpu}");
            }
        }
        for cpu in others() {
            assert_eq!(HITS[cpu].load(Ordering::Relaxed), base[cpu] + runs, "CPU {cpu}");
            assert_eq!(smp::stats(cpu).served, served[cpu] + ROUNDS, "CPU {cpu}");
            assert_eq!(run(cpu, take_reschedule, 0), 1);
        }
    }
}

/// An effective address in no segment anyone loads.
#[cfg(feature = "secondary-miss-test")]
const UNMAPPED_EA: u64 = 0x0000_0200_0000_0000;

#[cfg(feature = "secondary-miss-test")]
kernel_test! {
    fn deliberate_segment_miss_on_a_secondary() {
        fn touch(ea: u64) -> u64 {
            // SAFETY: none: this load is meant to take a segment miss on
            // a secondary processor, which ends the run.
            unsafe { (ea as *const u64).read_volatile() }
        }
        need_a_second_processor();
        crate::println!("(secondary-miss-test: CPU 1 loads from {UNMAPPED_EA:#x})");
        run(1, touch, UNMAPPED_EA);
        panic!("CPU 1 came back from a load in no segment");
    }
}
