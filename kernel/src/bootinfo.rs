//! Everything the kernel needs from the device tree, copied out of Open
//! Firmware into plain Rust values before the firmware's memory is reused
//! (the interrupt vectors overwrite VOF at real address 0).

use core::ffi::CStr;
use core::fmt;

use arch_ppc64::registers::spr::Pvr;

use crate::of::{OfError, OpenFirmware, Phandle, PROP_NAME_MAX};

/// Most memory ranges kept per list.
pub const MAX_RANGES: usize = 16;
/// Most 32-bit cells kept of `ibm,segment-page-sizes`.
pub const MAX_SPS_CELLS: usize = 96;

/// A range of real (physical) addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhysRange {
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl PhysRange {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// A fixed-capacity list of [`PhysRange`]s (no heap exists yet at boot).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeList {
    ranges: [PhysRange; MAX_RANGES],
    len: usize,
}

impl RangeList {
    /// Appends `r`; ranges beyond the capacity are dropped (and logged).
    pub fn push(&mut self, r: PhysRange) {
        if r.size == 0 {
            return;
        }
        if self.len == MAX_RANGES {
            log::warn!(
                "dropping memory range {:#x}+{:#x}: list full",
                r.base,
                r.size
            );
            return;
        }
        self.ranges[self.len] = r;
        self.len += 1;
    }

    /// The ranges as a slice.
    pub fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// Sum of the sizes.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(|r| r.size).sum()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// RTAS tokens from the `/rtas` node (PAPR 7.2: one property per service).
#[derive(Debug, Clone, Copy, Default)]
pub struct RtasTokens {
    /// `power-off`.
    pub power_off: Option<u32>,
    /// `ibm,os-term`.
    pub os_term: Option<u32>,
    /// `system-reboot`.
    pub system_reboot: Option<u32>,
    /// `start-cpu`: starts a stopped thread at a real address.
    pub start_cpu: Option<u32>,
    /// `query-cpu-stopped-state`: whether a thread is stopped or running.
    pub query_cpu_stopped_state: Option<u32>,
    /// How many properties `/rtas` has (its services plus a few sizes).
    pub properties: u32,
}

/// Most processors (hardware threads) the kernel keeps from `/cpus`;
/// the per-CPU areas are sized for this many.
pub const MAX_CPUS: usize = 8;

/// One processor thread found under `/cpus`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuThread {
    /// Its node's `reg`.
    pub reg: u32,
    /// Its interrupt server number (one entry of the node's
    /// `ibm,ppc-interrupt-server#s`, or `reg` without the property): the
    /// name RTAS `start-cpu` and XICS `H_IPI` know it by.
    pub server: u32,
}

/// How the boot processor was recognised among the `/cpus` nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootCpuFrom {
    /// `/chosen`'s `cpu` (an ihandle of the processor running the client
    /// program) named its node: its first thread.
    Chosen,
    /// No usable `/chosen` `cpu`: the first thread of the first node.
    FirstNode,
    /// The flattened device tree's header (`boot_cpuid_phys`, powernv).
    FdtHeader,
}

/// The processor threads of `/cpus` in the order the kernel numbers them:
/// the boot processor first (CPU index 0), then the others in device-tree
/// order. PIR is no help in telling them apart (it reads 0 on every vCPU
/// of QEMU's TCG pseries), so this list is the kernel's only map from CPU
/// index to server number.
#[derive(Debug, Clone, Copy)]
pub struct CpuList {
    threads: [CpuThread; MAX_CPUS],
    len: usize,
    /// Threads found beyond [`MAX_CPUS`] (not started).
    pub dropped: u32,
    /// How the boot processor was recognised.
    pub boot_from: BootCpuFrom,
}

impl CpuList {
    /// The threads kept, CPU index order.
    pub fn as_slice(&self) -> &[CpuThread] {
        &self.threads[..self.len]
    }

    /// Number of threads kept (at least 1 once collected).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no thread was found.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An empty list.
    pub fn new(boot_from: BootCpuFrom) -> CpuList {
        CpuList {
            threads: [CpuThread::default(); MAX_CPUS],
            len: 0,
            dropped: 0,
            boot_from,
        }
    }

    /// Appends `t` (or counts it in `dropped` past [`MAX_CPUS`]).
    pub fn push(&mut self, t: CpuThread) {
        if self.len == MAX_CPUS {
            self.dropped += 1;
        } else {
            self.threads[self.len] = t;
            self.len += 1;
        }
    }
}

/// Properties of the boot CPU's node.
#[derive(Debug, Clone, Copy)]
pub struct CpuInfo {
    /// `cpu-version` (the PVR as firmware reports it).
    pub cpu_version: Option<u32>,
    /// The PVR read from the processor (`mfpvr`).
    pub pvr: u32,
    /// `ibm,slb-size`: number of SLB entries.
    pub slb_size: Option<u32>,
    /// `ibm,pft-size`: `(reserved, log2 of the HPT size in bytes)`.
    pub pft_size: Option<(u32, u32)>,
    /// `ibm,processor-segment-sizes`: log2 segment sizes (-1 = unused).
    pub segment_sizes: [i32; 4],
    /// How many entries of `segment_sizes` the property had.
    pub segment_sizes_len: usize,
    /// `ibm,segment-page-sizes`, raw cells (PAPR C.6.6.2 encoding).
    pub segment_page_sizes: [u32; MAX_SPS_CELLS],
    /// How many cells of `segment_page_sizes` are valid.
    pub segment_page_sizes_len: usize,
    /// `timebase-frequency` in Hz.
    pub timebase_frequency: Option<u32>,
    /// `d-cache-block-size`: the bytes one `dcbz` zeroes.
    pub dcache_block_size: Option<u32>,
}

/// Which firmware started the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// QEMU's Virtual Open Firmware (`-M pseries,x-vof=on`).
    Vof,
    /// SLOF, QEMU's default pseries firmware.
    Slof,
    /// skiboot (OPAL) on a powernv machine.
    Skiboot,
}

/// What the kernel learned at boot.
#[derive(Debug, Clone, Copy)]
pub struct BootInfo {
    /// The firmware that booted us.
    pub firmware: Firmware,
    /// Root `#address-cells`.
    pub address_cells: u32,
    /// Root `#size-cells`.
    pub size_cells: u32,
    /// `reg` of every `device_type = "memory"` node.
    pub memory: RangeList,
    /// `available` of the memory nodes (what firmware has not claimed);
    /// empty if the firmware does not provide the property.
    pub available: RangeList,
    /// Memory the firmware keeps for itself inside `memory` (powernv: the
    /// device tree's reservation map and `/reserved-memory`); empty on
    /// pseries, where `available` says it.
    pub reserved: RangeList,
    /// The vty's `reg` (its H_PUT_TERM_CHAR terminal number).
    pub vty_reg: Option<u32>,
    /// RTAS tokens.
    pub rtas: RtasTokens,
    /// The boot processor's node.
    pub cpu: CpuInfo,
    /// Number of CPU nodes under `/cpus`.
    pub cpu_count: u32,
    /// The processor threads, boot processor first.
    pub cpus: CpuList,
    /// Real address range of the kernel image (text to end of stack).
    pub kernel: PhysRange,
    /// `/chosen` `bootargs` (QEMU `-append`), NUL-free, truncated.
    bootargs: [u8; 256],
    bootargs_len: usize,
}

impl BootInfo {
    /// Boot information with nothing found yet, for a platform that fills
    /// it in from another source than Open Firmware.
    pub fn empty(firmware: Firmware) -> BootInfo {
        BootInfo {
            firmware,
            address_cells: 2,
            size_cells: 1,
            memory: RangeList::default(),
            available: RangeList::default(),
            reserved: RangeList::default(),
            vty_reg: None,
            rtas: RtasTokens::default(),
            cpu: CpuInfo {
                cpu_version: None,
                pvr: Pvr::read() as u32,
                slb_size: None,
                pft_size: None,
                segment_sizes: [-1; 4],
                segment_sizes_len: 0,
                segment_page_sizes: [0; MAX_SPS_CELLS],
                segment_page_sizes_len: 0,
                timebase_frequency: None,
                dcache_block_size: None,
            },
            cpu_count: 0,
            cpus: CpuList::new(BootCpuFrom::FdtHeader),
            kernel: kernel_range(),
            bootargs: [0; 256],
            bootargs_len: 0,
        }
    }

    /// Sets the kernel command line (truncated to what fits, up to a NUL).
    pub fn set_bootargs(&mut self, args: &[u8]) {
        let len = args.len().min(self.bootargs.len());
        let len = args[..len].iter().position(|&b| b == 0).unwrap_or(len);
        self.bootargs[..len].copy_from_slice(&args[..len]);
        self.bootargs_len = len;
    }

    /// Total RAM from the memory nodes' `reg`.
    pub fn ram_size(&self) -> u64 {
        self.memory.total()
    }

    /// The boot CPU's `ibm,segment-page-sizes`, decoded.
    pub fn segment_page_sizes(&self) -> SegmentPageSizes<'_> {
        SegmentPageSizes::new(&self.cpu.segment_page_sizes[..self.cpu.segment_page_sizes_len])
    }

    /// The kernel command line (`/chosen` `bootargs`); empty if absent.
    pub fn bootargs(&self) -> &str {
        core::str::from_utf8(&self.bootargs[..self.bootargs_len]).unwrap_or("")
    }
}

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// Stores the boot information for [`get`]; later calls keep the first.
pub fn set(info: BootInfo) -> &'static BootInfo {
    BOOT_INFO.call_once(|| info)
}

/// The boot information, if collected yet.
pub fn try_get() -> Option<&'static BootInfo> {
    BOOT_INFO.get()
}

/// The boot information.
///
/// # Panics
///
/// Panics if called before [`set`].
pub fn get() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info collected")
}

/// Reads a property into a fixed buffer; `None` if absent.
fn prop<'a>(of: &OpenFirmware, node: Phandle, name: &CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let len = of.getprop(node, name, buf).ok()?;
    Some(&buf[..len.min(buf.len())])
}

/// Whether string property `name` of `node` equals `value`.
fn prop_is(of: &OpenFirmware, node: Phandle, name: &CStr, value: &[u8]) -> bool {
    let mut buf = [0u8; 64];
    match prop(of, node, name, &mut buf) {
        // OF strings include the NUL terminator; accept either form.
        Some(p) => p.strip_suffix(&[0]).unwrap_or(p) == value,
        None => false,
    }
}

/// Whether the NUL-separated string list `name` contains `value`.
fn prop_list_contains(of: &OpenFirmware, node: Phandle, name: &CStr, value: &[u8]) -> bool {
    let mut buf = [0u8; 128];
    match prop(of, node, name, &mut buf) {
        Some(p) => p.split(|&b| b == 0).any(|s| s == value),
        None => false,
    }
}

/// Big-endian cells of `bytes`.
fn cells(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Combines `n` (1 or 2) cells into a number.
fn read_number(it: &mut impl Iterator<Item = u32>, n: u32) -> Option<u64> {
    let mut v = 0u64;
    for _ in 0..n {
        v = (v << 32) | u64::from(it.next()?);
    }
    Some(v)
}

/// Parses a `reg`-style list of (address, size) pairs.
fn parse_ranges(bytes: &[u8], address_cells: u32, size_cells: u32, out: &mut RangeList) {
    let mut it = cells(bytes);
    while let (Some(base), Some(size)) = (
        read_number(&mut it, address_cells),
        read_number(&mut it, size_cells),
    ) {
        out.push(PhysRange { base, size });
    }
}

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// The top 4 effective-address bits the kernel is linked with (0xc...).
pub const KERNEL_VIRT_BASE: u64 = 0xc000_0000_0000_0000;

/// The real address of kernel memory `p`.
pub fn virt_to_real(p: u64) -> u64 {
    p & !KERNEL_VIRT_BASE
}

/// The kernel-linked address of real address `r`.
pub fn real_to_virt(r: u64) -> u64 {
    r | KERNEL_VIRT_BASE
}

/// The real address range of the kernel image.
pub fn kernel_range() -> PhysRange {
    // Only the addresses of the linker symbols are taken.
    let (start, end) = (
        &raw const __kernel_start as u64,
        &raw const __kernel_end as u64,
    );
    PhysRange {
        base: virt_to_real(start),
        size: end - start,
    }
}

/// Finds the vty's `reg` under `/vdevice` (compatible `hvterm1`).
pub fn find_vty(of: &OpenFirmware) -> Option<u32> {
    let vdevice = of.finddevice(c"/vdevice").ok()?;
    of.children(vdevice)
        .filter(|&n| {
            prop_list_contains(of, n, c"compatible", b"hvterm1") || prop_is(of, n, c"name", b"vty")
        })
        .filter_map(|n| of.getprop_u32(n, c"reg").ok())
        .min()
}

/// Collects the boot information from the device tree.
pub fn collect(of: &OpenFirmware) -> Result<BootInfo, OfError> {
    let root = of.finddevice(c"/")?;
    // IEEE 1275 defaults when absent: 2 address cells, 1 size cell.
    let address_cells = of.getprop_u32(root, c"#address-cells").unwrap_or(2);
    let size_cells = of.getprop_u32(root, c"#size-cells").unwrap_or(1);

    let mut memory = RangeList::default();
    let mut available = RangeList::default();
    for node in of.children(root) {
        if !prop_is(of, node, c"device_type", b"memory") {
            continue;
        }
        let mut buf = [0u8; 256];
        if let Some(reg) = prop(of, node, c"reg", &mut buf) {
            parse_ranges(reg, address_cells, size_cells, &mut memory);
        }
        if let Some(avail) = prop(of, node, c"available", &mut buf) {
            parse_ranges(avail, address_cells, size_cells, &mut available);
        }
    }

    let mut rtas = RtasTokens::default();
    if let Ok(node) = of.finddevice(c"/rtas") {
        rtas.power_off = of.getprop_u32(node, c"power-off").ok();
        rtas.os_term = of.getprop_u32(node, c"ibm,os-term").ok();
        rtas.system_reboot = of.getprop_u32(node, c"system-reboot").ok();
        rtas.start_cpu = of.getprop_u32(node, c"start-cpu").ok();
        rtas.query_cpu_stopped_state = of.getprop_u32(node, c"query-cpu-stopped-state").ok();
        rtas.properties = count_properties(of, node);
    }

    let mut cpu = CpuInfo {
        cpu_version: None,
        pvr: Pvr::read() as u32,
        slb_size: None,
        pft_size: None,
        segment_sizes: [-1; 4],
        segment_sizes_len: 0,
        segment_page_sizes: [0; MAX_SPS_CELLS],
        segment_page_sizes_len: 0,
        timebase_frequency: None,
        dcache_block_size: None,
    };
    let mut cpu_count = 0;
    let cpus = of.finddevice(c"/cpus")?;
    let chosen_cpu = chosen_cpu_node(of);
    let cpu_nodes = || {
        of.children(cpus)
            .filter(|&n| prop_is(of, n, c"device_type", b"cpu"))
    };
    // The boot processor's node: the one /chosen names, else the first.
    let boot_node = chosen_cpu
        .filter(|c| cpu_nodes().any(|n| n == *c))
        .or_else(|| cpu_nodes().next());
    let mut threads = CpuList {
        threads: [CpuThread::default(); MAX_CPUS],
        len: 0,
        dropped: 0,
        boot_from: if chosen_cpu.is_some() && chosen_cpu == boot_node {
            BootCpuFrom::Chosen
        } else {
            BootCpuFrom::FirstNode
        },
    };
    if let Some(node) = boot_node {
        push_threads(of, node, &mut threads);
    }
    for node in cpu_nodes() {
        cpu_count += 1;
        if Some(node) != boot_node {
            push_threads(of, node, &mut threads);
        }
    }
    if let Some(node) = boot_node {
        cpu.cpu_version = of.getprop_u32(node, c"cpu-version").ok();
        cpu.slb_size = of.getprop_u32(node, c"ibm,slb-size").ok();
        cpu.timebase_frequency = of.getprop_u32(node, c"timebase-frequency").ok();
        cpu.dcache_block_size = of.getprop_u32(node, c"d-cache-block-size").ok();
        let mut buf = [0u8; MAX_SPS_CELLS * 4];
        if let Some(p) = prop(of, node, c"ibm,pft-size", &mut buf) {
            let mut it = cells(p);
            if let (Some(a), Some(b)) = (it.next(), it.next()) {
                cpu.pft_size = Some((a, b));
            }
        }
        if let Some(p) = prop(of, node, c"ibm,processor-segment-sizes", &mut buf) {
            for (slot, c) in cpu.segment_sizes.iter_mut().zip(cells(p)) {
                *slot = c as i32;
                cpu.segment_sizes_len += 1;
            }
        }
        if let Ok(len) = of.getproplen(node, c"ibm,segment-page-sizes") {
            if len > buf.len() {
                log::warn!(
                    "ibm,segment-page-sizes has {len} bytes; keeping {}",
                    buf.len()
                );
            }
        }
        if let Some(p) = prop(of, node, c"ibm,segment-page-sizes", &mut buf) {
            for (slot, c) in cpu.segment_page_sizes.iter_mut().zip(cells(p)) {
                *slot = c;
                cpu.segment_page_sizes_len += 1;
            }
        }
    }

    // VOF registers the KVMPPC_H_VOF_CLIENT hcall and names its root's
    // firmware "vof"; SLOF is the only other pseries firmware QEMU ships.
    let firmware = if of.finddevice(c"/openprom").is_ok() && is_slof(of) {
        Firmware::Slof
    } else {
        Firmware::Vof
    };

    let mut bootargs = [0u8; 256];
    let mut bootargs_len = 0;
    if let Ok(chosen) = of.finddevice(c"/chosen") {
        if let Ok(len) = of.getprop(chosen, c"bootargs", &mut bootargs) {
            let len = len.min(bootargs.len());
            bootargs_len = bootargs[..len].iter().position(|&b| b == 0).unwrap_or(len);
        }
    }

    Ok(BootInfo {
        firmware,
        bootargs,
        bootargs_len,
        address_cells,
        size_cells,
        memory,
        available,
        reserved: RangeList::default(),
        vty_reg: find_vty(of),
        rtas,
        cpu,
        cpu_count,
        cpus: threads,
        kernel: kernel_range(),
    })
}

/// The node of `/chosen`'s `cpu` ihandle, if the firmware provides one.
fn chosen_cpu_node(of: &OpenFirmware) -> Option<Phandle> {
    let chosen = of.finddevice(c"/chosen").ok()?;
    let ihandle = of.getprop_u32(chosen, c"cpu").ok()?;
    of.instance_to_package(ihandle).ok()
}

/// Appends the threads of CPU node `node` to `out`: one per entry of
/// `ibm,ppc-interrupt-server#s`, or one named by `reg` without it.
fn push_threads(of: &OpenFirmware, node: Phandle, out: &mut CpuList) {
    let Ok(reg) = of.getprop_u32(node, c"reg") else {
        return;
    };
    let mut buf = [0u8; 4 * MAX_CPUS];
    let servers = match prop(of, node, c"ibm,ppc-interrupt-server#s", &mut buf) {
        Some(p) if p.len() >= 4 => p,
        _ => {
            out.push(CpuThread { reg, server: reg });
            return;
        }
    };
    for server in cells(servers) {
        out.push(CpuThread { reg, server });
    }
    // A node with more threads than the buffer holds: count the rest.
    if let Ok(len) = of.getproplen(node, c"ibm,ppc-interrupt-server#s") {
        out.dropped += (len.saturating_sub(buf.len()) / 4) as u32;
    }
}

/// Counts the properties of `node` by walking `nextprop`.
fn count_properties(of: &OpenFirmware, node: Phandle) -> u32 {
    let mut name = [0u8; PROP_NAME_MAX];
    let mut previous = [0u8; PROP_NAME_MAX];
    let mut count = 0;
    // A name that does not fit (no NUL) ends the walk.
    while let Ok(prev) = CStr::from_bytes_until_nul(&previous) {
        if count > 1000 || !matches!(of.nextprop(node, prev, &mut name), Ok(true)) {
            break;
        }
        count += 1;
        previous = name;
    }
    count
}

/// Whether `/openprom`'s `model` names SLOF.
fn is_slof(of: &OpenFirmware) -> bool {
    let Ok(node) = of.finddevice(c"/openprom") else {
        return false;
    };
    let mut buf = [0u8; 64];
    prop(of, node, c"model", &mut buf).is_some_and(|m| m.windows(4).any(|w| w == b"SLOF"))
}

/// Decodes `ibm,segment-page-sizes` (PAPR C.6.6.2): for each segment base
/// page size, `(log2 base, SLB encoding, count)` then `count` pairs of
/// `(log2 page size, HPTE encoding)`.
pub struct SegmentPageSizes<'a> {
    cells: &'a [u32],
}

impl<'a> SegmentPageSizes<'a> {
    /// Wraps the raw cells.
    pub fn new(cells: &'a [u32]) -> Self {
        Self { cells }
    }
}

/// One segment base page size with the page sizes it allows.
#[derive(Debug, Clone, Copy)]
pub struct SegmentPageSize<'a> {
    /// log2 of the segment's base page size.
    pub base_shift: u32,
    /// SLB L||LP encoding.
    pub slb_encoding: u32,
    /// `(log2 page size, HPTE LP encoding)` pairs.
    pub pages: &'a [u32],
}

impl<'a> Iterator for SegmentPageSizes<'a> {
    type Item = SegmentPageSize<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let [base_shift, slb_encoding, count, rest @ ..] = self.cells else {
            return None;
        };
        let n = (*count as usize).checked_mul(2)?;
        if rest.len() < n {
            return None;
        }
        let (pages, tail) = rest.split_at(n);
        self.cells = tail;
        Some(SegmentPageSize {
            base_shift: *base_shift,
            slb_encoding: *slb_encoding,
            pages,
        })
    }
}

impl fmt::Display for BootInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "firmware      : {:?}", self.firmware)?;
        writeln!(
            f,
            "cells         : #address-cells={} #size-cells={}",
            self.address_cells, self.size_cells
        )?;
        for r in self.memory.as_slice() {
            writeln!(
                f,
                "memory        : {:#012x}..{:#012x} ({} MiB)",
                r.base,
                r.end(),
                r.size >> 20
            )?;
        }
        for r in self.available.as_slice() {
            writeln!(f, "available     : {:#012x}..{:#012x}", r.base, r.end())?;
        }
        for r in self.reserved.as_slice() {
            writeln!(f, "reserved      : {:#012x}..{:#012x}", r.base, r.end())?;
        }
        writeln!(f, "RAM           : {} MiB", self.ram_size() >> 20)?;
        writeln!(
            f,
            "kernel        : {:#x}..{:#x}",
            self.kernel.base,
            self.kernel.end()
        )?;
        match self.vty_reg {
            Some(r) => writeln!(f, "vty reg       : {r:#x}")?,
            None => writeln!(f, "vty reg       : not found")?,
        }
        writeln!(
            f,
            "rtas tokens   : power-off={:x?} ibm,os-term={:x?} system-reboot={:x?} start-cpu={:x?} query-cpu-stopped-state={:x?} ({} properties)",
            self.rtas.power_off,
            self.rtas.os_term,
            self.rtas.system_reboot,
            self.rtas.start_cpu,
            self.rtas.query_cpu_stopped_state,
            self.rtas.properties
        )?;
        writeln!(
            f,
            "cpus          : {} (PVR {:#010x}, cpu-version {:x?})",
            self.cpu_count, self.cpu.pvr, self.cpu.cpu_version
        )?;
        write!(f, "cpu servers   :")?;
        for (i, t) in self.cpus.as_slice().iter().enumerate() {
            write!(f, " {i}={:#x}", t.server)?;
        }
        writeln!(
            f,
            " (boot processor from {}{})",
            match self.cpus.boot_from {
                BootCpuFrom::Chosen => "/chosen cpu",
                BootCpuFrom::FirstNode => "the first /cpus node",
                BootCpuFrom::FdtHeader => "the device tree header",
            },
            if self.cpus.dropped > 0 {
                "; more threads than MAX_CPUS, not started"
            } else {
                ""
            }
        )?;
        writeln!(f, "ibm,slb-size  : {:?}", self.cpu.slb_size)?;
        writeln!(f, "d-cache-block : {:?}", self.cpu.dcache_block_size)?;
        writeln!(f, "bootargs      : {:?}", self.bootargs())?;
        match self.cpu.pft_size {
            Some((_, shift)) => writeln!(
                f,
                "ibm,pft-size  : 2^{shift} bytes ({} PTEGs)",
                1u64 << shift.saturating_sub(7)
            )?,
            None => writeln!(f, "ibm,pft-size  : absent")?,
        }
        writeln!(
            f,
            "segment sizes : {:?}",
            &self.cpu.segment_sizes[..self.cpu.segment_sizes_len]
        )?;
        write!(f, "page sizes    :")?;
        for seg in self.segment_page_sizes() {
            write!(f, " seg 2^{} [", seg.base_shift)?;
            for (i, pair) in seg.pages.chunks_exact(2).enumerate() {
                if i > 0 {
                    write!(f, " ")?;
                }
                write!(f, "2^{}", pair[0])?;
            }
            write!(f, "]")?;
        }
        writeln!(f)?;
        writeln!(f, "timebase      : {:?} Hz", self.cpu.timebase_frequency)
    }
}
