//! powernv: the kernel runs bare metal in hypervisor state under skiboot
//! (`qemu-system-ppc64 -M powernv8/9/10`).
//!
//! * Entry (`crate::boot`): MSR = SF | HV with ME = 0 (the boot code sets
//!   ME), r3 = the flattened device tree, r8/r9 = OPAL's base and entry.
//!   QEMU copies the whole ELF file to 0x20000000 and skiboot jumps into
//!   it there; the boot code copies each loadable segment to the real
//!   address the kernel is linked for (as on pseries) before going on.
//! * Boot information: read from the device tree ([`collect`]) instead of
//!   through an Open Firmware client interface; memory skiboot keeps for
//!   itself is in the reservation map and `/reserved-memory`.
//! * Console and end of run: OPAL calls ([`console_write`], [`exit`]),
//!   made in real mode with external interrupts off as OPAL requires.
//!   There is no failure exit a guest can trigger (QEMU exits 0 on every
//!   power-down), so a failed run prints [`FAILURE_MARKER`] before the
//!   power-down and `qemu-run.sh` turns that line into status 1.
//! * Processor state ([`init_cpu`]): LPCR is set so that every interrupt
//!   arrives big-endian in real mode at its vector at 0 (ILE, AIL and
//!   HAIL clear), the hypervisor decrementer cannot interrupt (HDICE
//!   clear: nothing here uses it; its vector 0x980 still reports a stray
//!   one), the decrementer is the 32-bit one the kernel programs (LD
//!   clear) and translation is hashed (HR and UPRT clear). Hypervisor
//!   maintenance interrupts are not masked by anything software controls;
//!   QEMU raises none, and one would be reported through its vector like
//!   any unexpected interrupt (`crate::trap` saves HSRR0/HSRR1 for the
//!   hypervisor vectors).
//! * The hashed page table belongs to the kernel ([`install_hpt`]): SDR1 on
//!   POWER8, a partition table entry and PTCR on POWER9/10.

use core::arch::global_asm;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use arch_ppc64::addr::PhysAddr;
use arch_ppc64::fdt::{reg_pairs, Fdt, Node};
use arch_ppc64::instructions::barrier;
use arch_ppc64::instructions::opal::{token, Opal, OpalError};
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::registers::spr::{Lpcr, Lpidr, Ptcr, Sdr1};
use arch_ppc64::structures::partition;

use super::ConsoleError;
use crate::bootinfo::{
    virt_to_real, BootCpuFrom, BootInfo, CpuList, CpuThread, Firmware, PhysRange, RangeList,
    MAX_CPUS, MAX_SPS_CELLS,
};

/// The line a failed run prints before it powers down (followed by the
/// reason); `qemu-run.sh --machine powernv` exits 1 when it sees it.
pub const FAILURE_MARKER: &str = "powernv: RUN FAILED";
/// The line a successful run prints before it powers down.
pub const SUCCESS_MARKER: &str = "powernv: RUN PASSED";

/// What [`install_hpt`] wrote to SDR1 (POWER8) or PTCR (POWER9/10), for
/// the secondaries ([`init_secondary_cpu`]); which one by [`HPT_REG_IS_PTCR`].
static HPT_REG: AtomicU64 = AtomicU64::new(0);
static HPT_REG_IS_PTCR: AtomicU64 = AtomicU64::new(0);

static OPAL_BASE: AtomicU64 = AtomicU64::new(0);
static OPAL_ENTRY: AtomicU64 = AtomicU64::new(0);

/// Records where OPAL is (r8/r9 at entry) and that this is powernv.
pub fn init(base: u64, entry: u64) {
    OPAL_BASE.store(base, Ordering::Relaxed);
    OPAL_ENTRY.store(entry, Ordering::Relaxed);
    super::set_powernv();
}

/// OPAL's base address (r8 at entry).
pub fn opal_base() -> u64 {
    OPAL_BASE.load(Ordering::Relaxed)
}

fn opal() -> Opal {
    Opal {
        base: OPAL_BASE.load(Ordering::Relaxed),
        entry: OPAL_ENTRY.load(Ordering::Relaxed),
    }
}

/// Calls OPAL: real mode and MSR\[EE\] = 0 for the call, then the caller's
/// MSR back. Pointer arguments must be real addresses.
fn call(token: u64, args: [u64; 4]) -> Result<u64, OpalError> {
    let saved = msr::read();
    let real = saved - (Msr::IR | Msr::DR | Msr::EE);
    // SAFETY: the kernel's code, data and stacks are at the same real
    // addresses with translation off (the linear map is the identity on
    // real addresses, and real mode ignores the top address bits), so
    // dropping IR|DR only changes how the next accesses are translated;
    // EE = 0 keeps interrupts out while OPAL runs. OPAL is the one that
    // booted us (init); the callers pass real addresses of memory that
    // lives across the call.
    unsafe {
        if real != saved {
            msr::write(real);
        }
        let r = opal().call(token, args);
        if real != saved {
            msr::write(saved);
        }
        r
    }
}

/// Lets OPAL run its pollers (console output, the BMC).
fn poll() {
    let _ = call(token::POLL_EVENTS, [0; 4]);
}

/// Writes `bytes` to OPAL console 0, a bounce buffer at a time (OPAL takes
/// real addresses; the caller's bytes may be anywhere).
pub fn console_write(bytes: &[u8]) -> Result<(), ConsoleError> {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len()) {
        buf[..chunk.len()].copy_from_slice(chunk);
        let mut done = 0;
        let mut idle = 0u32;
        while done < chunk.len() {
            let mut len = ((chunk.len() - done) as u64).to_be_bytes();
            let r = call(
                token::CONSOLE_WRITE,
                [
                    0,
                    virt_to_real(len.as_mut_ptr() as u64),
                    virt_to_real(buf[done..].as_ptr() as u64),
                    0,
                ],
            );
            let wrote = (u64::from_be_bytes(len) as usize).min(chunk.len() - done);
            match r {
                Ok(_) => {}
                Err(e) if e.is_busy() || e == OpalError::Partial => {}
                Err(_) => return Err(ConsoleError),
            }
            done += wrote;
            if wrote == 0 {
                // The buffer is full: let OPAL drain it.
                poll();
                idle += 1;
                if idle > 100_000 {
                    return Err(ConsoleError);
                }
            }
        }
    }
    Ok(())
}

/// The BMC's IPMI interface as OPAL names it (`ibm,ipmi-interface-id`
/// of `/ibm,opal/ipmi`), plus one; 0 without a BMC.
static IPMI_INTERFACE: AtomicU64 = AtomicU64::new(0);

/// `struct opal_ipmi_msg`: format version 1, the network function (with
/// the LUN in its low two bits), the command, then its data.
#[repr(C)]
struct IpmiMsg {
    version: u8,
    netfn: u8,
    cmd: u8,
    data: [u8; 32],
}

/// Why [`stop_bmc_watchdog`] did not stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogError {
    /// The device tree names no IPMI interface (no BMC: no watchdog).
    NoBmc,
    /// OPAL refused the request or its answer.
    Opal(OpalError),
    /// No answer came.
    NoAnswer,
    /// The BMC answered with this completion code.
    Completion(u8),
}

/// Stops the BMC's watchdog timer. skiboot leaves it running into the
/// operating system (60 s, then the BMC resets the machine) for the OS to
/// take over, as Linux's IPMI watchdog driver does; a kernel that does not
/// would be reset in the middle of any run longer than a minute. IPMI "Set
/// Watchdog Timer" (network function App, command 0x24) with the "don't
/// stop" bit clear stops the timer; the expiry action is set to none as
/// well.
pub fn stop_bmc_watchdog() -> Result<(), WatchdogError> {
    let interface = match IPMI_INTERFACE.load(Ordering::Relaxed) {
        0 => return Err(WatchdogError::NoBmc),
        id => id - 1,
    };
    const NETFN_APP: u8 = 0x06;
    const SET_WATCHDOG_TIMER: u8 = 0x24;
    let mut msg = IpmiMsg {
        version: 1,
        netfn: NETFN_APP << 2,
        cmd: SET_WATCHDOG_TIMER,
        data: [0; 32],
    };
    // Timer use: SMS/OS (4), "don't stop" clear; action: none; no
    // pre-timeout; clear the SMS/OS expiration flag; countdown 0.
    msg.data[..6].copy_from_slice(&[0x04, 0x00, 0x00, 0x10, 0x00, 0x00]);
    call(
        token::IPMI_SEND,
        [interface, virt_to_real(&raw const msg as u64), 3 + 6, 0],
    )
    .map_err(WatchdogError::Opal)?;
    // The answer comes once OPAL's pollers have talked to the BMC: give
    // it up to a second of timebase (512 MHz).
    let start = crate::harness::timebase();
    while crate::harness::timebase() - start < 512_000_000 {
        poll();
        let mut answer = IpmiMsg {
            version: 1,
            netfn: 0,
            cmd: 0,
            data: [0; 32],
        };
        let mut len = (core::mem::size_of::<IpmiMsg>() as u64).to_be_bytes();
        let r = call(
            token::IPMI_RECV,
            [
                interface,
                virt_to_real(&raw mut answer as u64),
                virt_to_real(len.as_mut_ptr() as u64),
                0,
            ],
        );
        match r {
            Ok(_) if answer.cmd == SET_WATCHDOG_TIMER => {
                return match answer.data[0] {
                    0 => Ok(()),
                    cc => Err(WatchdogError::Completion(cc)),
                };
            }
            Ok(_) => {}
            Err(OpalError::Empty) => {}
            Err(e) if e.is_busy() => {}
            Err(e) => return Err(WatchdogError::Opal(e)),
        }
    }
    Err(WatchdogError::NoAnswer)
}

/// Prints the verdict line, lets OPAL flush the console and powers the
/// machine down (QEMU exits 0; see [`FAILURE_MARKER`]).
pub fn exit(success: bool, message: &str) -> ! {
    // How long the kernel took, entry to verdict, in the timebase's
    // (host-clock) time: OPAL's own boot before it is not counted.
    let hz = crate::bootinfo::try_get()
        .and_then(|b| b.cpu.timebase_frequency)
        .map_or(512_000_000, u64::from);
    let ms =
        (arch_ppc64::registers::spr::timebase() - crate::harness::entry_timebase()) / (hz / 1000);
    crate::console::print_fmt_unlocked(format_args!(
        "\npowernv: {ms} ms from kernel entry to the verdict"
    ));
    if success {
        crate::console::print_fmt_unlocked(format_args!("\n{SUCCESS_MARKER}\n"));
    } else {
        crate::console::print_fmt_unlocked(format_args!("\n{FAILURE_MARKER}: {message}\n"));
    }
    for _ in 0..16 {
        poll();
    }
    let r = call(token::CEC_POWER_DOWN, [0; 4]);
    if let Err(e) = r {
        crate::console::print_fmt_unlocked(format_args!("OPAL power-down failed: {e:?}\n"));
    }
    loop {
        poll();
    }
}

/// LPCR bits [`init_cpu`] clears (ISA bit n is `1 << (63 - n)`): ILE (38),
/// AIL (39:40), HAIL (37, ISA 3.1), UPRT (41), HR (43), LD (46), HVICE
/// (62), HDICE (63).
pub const LPCR_CLEAR: u64 =
    (1 << 25) | (3 << 23) | (1 << 26) | (1 << 22) | (1 << 20) | (1 << 17) | 2 | 1;

/// Puts this processor's LPCR in the state the kernel's interrupt and
/// translation code expects (see the module docs).
pub fn init_cpu() {
    // SAFETY: hypervisor state (powernv); the bits cleared make interrupts
    // arrive as the vectors at real address 0 expect and keep the
    // hypervisor decrementer quiet. Translation is off at this point.
    unsafe {
        Lpcr::write(Lpcr::read() & !LPCR_CLEAR);
        Lpidr::write(0);
    }
    barrier::isync();
}

/// Whether the processor reads HPTEs in the ISA 3.0 layout (POWER9 and
/// later: PVR version 0x004e and above; POWER8 is 0x004b..=0x004d).
pub fn isa300(pvr: u32) -> bool {
    (pvr >> 16) >= 0x004e
}

/// Points the MMU at the hashed page table of 2^`shift` bytes at real
/// address `base` (zeroed, aligned to its size): SDR1 on POWER8; on
/// POWER9/10 entry 0 of the partition table at `patb` (a zeroed 4 KiB
/// frame) and PTCR.
///
/// # Safety
///
/// Translation must be off, and the table must hold no entry the kernel
/// does not mean to use.
pub unsafe fn install_hpt(base: u64, shift: u32, patb: u64, pvr: u32) {
    let base = PhysAddr::new(base);
    if isa300(pvr) {
        let entry = partition::partition_entry(base, shift).expect("HPT base aligned to its size");
        let ptcr = partition::ptcr_value(PhysAddr::new(patb), 12).expect("4 KiB partition table");
        let p = crate::bootinfo::real_to_virt(patb) as *mut u64;
        // SAFETY: `patb` is a 4 KiB frame the caller gave us; entry 0 is
        // LPID 0's, ours. Then ptesync orders the table before PTCR.
        unsafe {
            p.write_volatile(entry[0]);
            p.add(1).write_volatile(entry[1]);
            barrier::ptesync();
            Ptcr::write(ptcr);
        }
        HPT_REG.store(ptcr, Ordering::Relaxed);
        HPT_REG_IS_PTCR.store(1, Ordering::Relaxed);
    } else {
        let sdr1 = partition::sdr1(base, shift).expect("HPT base aligned to its size");
        // SAFETY: per the caller's contract.
        unsafe { Sdr1::write(sdr1) };
        HPT_REG.store(sdr1, Ordering::Relaxed);
    }
    barrier::ptesync();
    barrier::isync();
}

fn prop_u32(n: &Node<'_>, name: &str) -> Option<u32> {
    let p = n.property(name)?;
    p.as_u32().or_else(|| p.as_u64().map(|v| v as u32))
}

fn is_cpu(n: &Node<'_>) -> bool {
    n.property("device_type").and_then(|p| p.as_str()) == Some("cpu")
}

/// The threads of CPU node `n`: one per `ibm,ppc-interrupt-server#s`
/// entry (the PIR OPAL_START_CPU names it by), or `reg` without it.
fn push_threads(n: &Node<'_>, out: &mut CpuList) {
    let Some(reg) = prop_u32(n, "reg") else {
        return;
    };
    match n.property("ibm,ppc-interrupt-server#s") {
        Some(p) if p.value.len() >= 4 => {
            for server in p.cells() {
                out.push(CpuThread { reg, server });
            }
        }
        _ => out.push(CpuThread { reg, server: reg }),
    }
}

/// Reads the boot information from skiboot's device tree at real address
/// `fdt`.
///
/// # Panics
///
/// If `fdt` is no device tree or has no `/cpus`.
pub fn collect(fdt: u64) -> BootInfo {
    // SAFETY: skiboot passes the tree in r3 and keeps it (in memory it
    // reserved) while the kernel reads it here, in real mode, before the
    // frame allocator could hand that memory out.
    let fdt = unsafe { Fdt::from_ptr(crate::bootinfo::real_to_virt(fdt) as *const u8) }
        .unwrap_or_else(|e| panic!("powernv: no device tree at r3: {e:?}"));
    let root = fdt.root().expect("powernv: the device tree has a root");
    let mut info = BootInfo::empty(Firmware::Skiboot);
    if let Some(id) = fdt
        .find("/ibm,opal/ipmi")
        .and_then(|n| n.property("ibm,ipmi-interface-id"))
        .and_then(|p| p.as_u32())
    {
        IPMI_INTERFACE.store(u64::from(id) + 1, Ordering::Relaxed);
    }
    let cells = root.cell_sizes();
    (info.address_cells, info.size_cells) = cells;

    for n in root.children() {
        let memory = n.base_name() == "memory"
            || n.property("device_type").and_then(|p| p.as_str()) == Some("memory");
        if let (true, Some(reg)) = (memory, n.property("reg")) {
            for (base, size) in reg_pairs(reg, cells) {
                info.memory.push(PhysRange { base, size });
            }
        }
    }
    // skiboot lists its regions in both places: keep each once, so the
    // list's capacity goes to distinct ones.
    let mut reserved = RangeList::default();
    let mut reserve = |base, size| {
        let r = PhysRange { base, size };
        if !reserved.as_slice().contains(&r) {
            reserved.push(r);
        }
    };
    for (base, size) in fdt.reservations() {
        reserve(base, size);
    }
    if let Some(rm) = root.child("reserved-memory") {
        let rcells = rm.cell_sizes();
        for n in rm.children() {
            if let Some(reg) = n.property("reg") {
                for (base, size) in reg_pairs(reg, rcells) {
                    reserve(base, size);
                }
            }
        }
    }
    info.reserved = reserved;

    let cpus = fdt.find("/cpus").expect("powernv: /cpus");
    let boot_id = fdt.boot_cpuid();
    let names_boot = |n: &Node<'_>| {
        prop_u32(n, "reg") == Some(boot_id)
            || n.property("ibm,ppc-interrupt-server#s")
                .is_some_and(|p| p.cells().any(|c| c == boot_id))
    };
    let boot = cpus.children().filter(is_cpu).find(names_boot);
    let mut threads = CpuList::new(if boot.is_some() {
        BootCpuFrom::FdtHeader
    } else {
        BootCpuFrom::FirstNode
    });
    let boot = boot.or_else(|| cpus.children().find(is_cpu));
    if let Some(b) = boot {
        // The boot thread first: CPU index 0 is the one running now.
        let mut own = CpuList::new(BootCpuFrom::FdtHeader);
        push_threads(&b, &mut own);
        let first = own
            .as_slice()
            .iter()
            .position(|t| t.server == boot_id)
            .unwrap_or(0);
        for t in own.as_slice()[first..]
            .iter()
            .chain(&own.as_slice()[..first])
        {
            threads.push(*t);
        }
    }
    for n in cpus.children().filter(is_cpu) {
        info.cpu_count += 1;
        if Some(n.name()) != boot.map(|b| b.name()) {
            push_threads(&n, &mut threads);
        }
    }
    info.cpus = threads;

    if let Some(b) = boot {
        let cpu = &mut info.cpu;
        cpu.cpu_version = prop_u32(&b, "cpu-version");
        cpu.slb_size = prop_u32(&b, "ibm,slb-size");
        cpu.timebase_frequency = prop_u32(&b, "timebase-frequency");
        cpu.dcache_block_size = prop_u32(&b, "d-cache-block-size");
        if let Some(p) = b.property("ibm,processor-segment-sizes") {
            for (slot, c) in cpu.segment_sizes.iter_mut().zip(p.cells()) {
                *slot = c as i32;
                cpu.segment_sizes_len += 1;
            }
        }
        if let Some(p) = b.property("ibm,segment-page-sizes") {
            for (slot, c) in cpu.segment_page_sizes.iter_mut().zip(p.cells()) {
                *slot = c;
                cpu.segment_page_sizes_len += 1;
            }
            if p.value.len() / 4 > MAX_SPS_CELLS {
                log::warn!(
                    "ibm,segment-page-sizes has {} cells; keeping {MAX_SPS_CELLS}",
                    p.value.len() / 4
                );
            }
        }
    }
    if let Some(args) = fdt.find("/chosen").and_then(|c| c.property("bootargs")) {
        info.set_bootargs(args.value);
    }
    info
}

/// A secondary processor's own copy of what the boot processor set up:
/// LPCR ([`init_cpu`]) and the register naming the kernel's table (these
/// are per thread). Runs in real mode before the secondary turns
/// translation on.
pub fn init_secondary_cpu() {
    init_cpu();
    let value = HPT_REG.load(Ordering::Relaxed);
    // SAFETY: translation is off on this processor, and the value names
    // the table the boot processor installed and never moves.
    unsafe {
        if HPT_REG_IS_PTCR.load(Ordering::Relaxed) != 0 {
            Ptcr::write(value);
        } else {
            Sdr1::write(value);
        }
    }
    barrier::ptesync();
    barrier::isync();
}

/// The PIR each CPU index will start with (`u64::MAX`: none): how
/// `pnv_secondary_start`, which OPAL enters with r3 = PIR, finds its CPU
/// index.
#[no_mangle]
static PNV_START_PIR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

global_asm!(
    r#"
    .section .text.pnv_secondary_start, "ax"
    .globl pnv_secondary_start
    .p2align 2
pnv_secondary_start:
    # OPAL_START_CPU enters in real mode with MSR = SF | HV (ME = 0) and
    # r3 = the thread's PIR. ME and FP on, as _start does.
    mfmsr   %r11
    ori     %r11, %r11, 0x3000
    mtmsrd  %r11
    isync
    lis     %r4, PNV_START_PIR@highest
    ori     %r4, %r4, PNV_START_PIR@higher
    rldicr  %r4, %r4, 32, 31
    oris    %r4, %r4, PNV_START_PIR@high
    ori     %r4, %r4, PNV_START_PIR@l
    li      %r5, 0
1:  ld      %r6, 0(%r4)
    cmpd    %r6, %r3
    beq     2f
    addi    %r4, %r4, 8
    addi    %r5, %r5, 1
    cmpdi   %r5, {max_cpus}
    blt     1b
3:  b       3b                     # a PIR no CPU index was given
2:  mr      %r3, %r5
    b       smp_secondary_start
"#,
    max_cpus = const MAX_CPUS,
);

extern "C" {
    /// The secondaries' OPAL entry (a code label).
    static pnv_secondary_start: u8;
}

/// Whether the thread with PIR `server` waits in OPAL, ready for
/// [`start_cpu`] (`OPAL_QUERY_CPU_STATUS` says inactive).
pub fn cpu_is_waiting(server: u32) -> Result<bool, OpalError> {
    let mut status = [0xffu8; 8];
    call(
        token::QUERY_CPU_STATUS,
        [
            u64::from(server),
            virt_to_real(status.as_mut_ptr() as u64),
            0,
            0,
        ],
    )?;
    // OPAL_THREAD_INACTIVE: in OPAL, not given to the OS yet.
    Ok(status[0] == 0)
}

/// Starts the thread with PIR `server` as CPU index `cpu`
/// (`OPAL_START_CPU` at `pnv_secondary_start`, which goes on to the same
/// entry as on pseries with r3 = `cpu`).
pub fn start_cpu(cpu: usize, server: u32) -> Result<(), OpalError> {
    PNV_START_PIR[cpu].store(u64::from(server), Ordering::Relaxed);
    fence(Ordering::SeqCst);
    let entry = virt_to_real(&raw const pnv_secondary_start as u64);
    call(token::START_CPU, [u64::from(server), entry, 0, 0]).map(|_| ())
}

/// `msgsnd` RB message type 5: a hypervisor doorbell (0xe80).
const DOORBELL_HYPERVISOR: u64 = 5 << 27;

/// Rings the hypervisor doorbell of the thread with PIR `pir`: the IPI of
/// powernv, taken at 0xe80 when the target has MSR\[EE\] = 1 (no
/// interrupt controller involved). QEMU delivers it to any thread of the
/// machine; POWER9 hardware only within a core, where OPAL's interrupt
/// controller (XIVE) would be needed.
pub fn send_doorbell(pir: u32) {
    let rb = DOORBELL_HYPERVISOR | u64::from(pir & 0xf_ffff);
    // SAFETY: sync makes the sender's stores (the cross-call mailbox)
    // visible before the doorbell; msgsnd (X-form, XO 206, RB = r3)
    // touches no memory.
    unsafe {
        core::arch::asm!(
            "sync",
            ".long 0x7c00199c",
            in("r3") rb,
            options(nostack, preserves_flags)
        );
    }
}

/// Clears this thread's pending hypervisor doorbell (`msgclr`): the
/// receiver's acknowledgement, before it serves its mailbox.
pub fn clear_doorbell() {
    // SAFETY: msgclr (X-form, XO 238, RB = r3) only drops this thread's
    // pending doorbell of the given type.
    unsafe {
        core::arch::asm!(
            ".long 0x7c0019dc",
            in("r3") DOORBELL_HYPERVISOR,
            options(nostack, nomem, preserves_flags)
        );
    }
}

/// Whether this processor has `stop` (ISA 3.0: POWER9 and later).
pub fn has_stop() -> bool {
    isa300(arch_ppc64::registers::spr::Pvr::read() as u32)
}

/// What an idle secondary does between interrupts: MSR\[EE\] on (the
/// doorbell and the decrementer come in), then on POWER9/10 `stop` with
/// PSSCR = 0 (EC = 0: the lightest state, which any interrupt ends, going
/// on after the instruction once the interrupt was taken; QEMU halts the
/// vCPU meanwhile); POWER8's `nap` would come back through the system
/// reset vector, so there it spins.
pub fn idle() -> ! {
    let stop = isa300(arch_ppc64::registers::spr::Pvr::read() as u32);
    // SAFETY: the secondary holds no lock here and handles its interrupts
    // (`crate::smp::secondary_trap`); PSSCR = 0 asks for no state loss.
    unsafe {
        if stop {
            Psscr::write(0);
        }
        msr::write(msr::read() | Msr::EE);
    }
    loop {
        if stop {
            // SAFETY: `stop` (XL-form, XO 370) with PSSCR[EC] = 0 resumes
            // at the next instruction; it touches no memory.
            unsafe { core::arch::asm!(".long 0x4c0002e4", options(nostack, nomem)) };
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Processor Stop Status and Control Register (SPR 855, ISA 3.0).
type Psscr = arch_ppc64::registers::spr::Spr<855>;
