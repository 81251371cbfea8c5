//! Open Firmware client interface (IEEE 1275 §6.3.2, PAPR's binding).
//!
//! Both firmwares QEMU offers pass the client-interface entry in r5: VOF
//! (`x-vof=on`), whose entry is 32-bit code that forwards to the
//! `KVMPPC_H_VOF_CLIENT` hcall, and SLOF. The argument block is an array of
//! 32-bit big-endian cells holding 32-bit real addresses. Like Linux's
//! `enter_prom`, [`OpenFirmware::call`] enters the firmware in 32-bit mode
//! (MSR\[SF\] = 0) with real-address stack and buffers, and saves the full
//! 64-bit non-volatile registers itself because 32-bit code preserves only
//! their low halves.

use core::arch::global_asm;
use core::ffi::CStr;

// of_call_raw(args: r3 = real address of the argument block,
//             entry: r4 = client-interface entry) -> r3 = status (0 = ok)
global_asm!(
    r#"
    .section .text.of_call_raw, "ax"
    .globl of_call_raw
    .p2align 2
of_call_raw:
    mflr    %r0
    std     %r0, 16(%r1)
    stdu    %r1, -304(%r1)
    std     %r2, 112(%r1)
    std     %r13, 120(%r1)
    std     %r14, 128(%r1)
    std     %r15, 136(%r1)
    std     %r16, 144(%r1)
    std     %r17, 152(%r1)
    std     %r18, 160(%r1)
    std     %r19, 168(%r1)
    std     %r20, 176(%r1)
    std     %r21, 184(%r1)
    std     %r22, 192(%r1)
    std     %r23, 200(%r1)
    std     %r24, 208(%r1)
    std     %r25, 216(%r1)
    std     %r26, 224(%r1)
    std     %r27, 232(%r1)
    std     %r28, 240(%r1)
    std     %r29, 248(%r1)
    std     %r30, 256(%r1)
    std     %r31, 264(%r1)
    mfcr    %r0
    std     %r0, 272(%r1)
    mfmsr   %r0
    std     %r0, 280(%r1)

    # The firmware gets a real-address stack pointer (top 4 EA bits clear)
    # and runs in 32-bit mode: clear MSR[SF]. Execution continues at the
    # low 32 bits of our address, which real mode maps to the same bytes.
    clrldi  %r1, %r1, 4
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0
    andc    %r11, %r11, %r12
    mtctr   %r4
    mtmsrd  %r11
    isync
    bctrl

    # Back in 32-bit mode: set SF again, then rebuild the 64-bit stack
    # pointer from its low half (the firmware may have zeroed the top).
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0
    or      %r11, %r11, %r12
    mtmsrd  %r11
    isync
    clrldi  %r1, %r1, 32
    lis     %r12, -0x4000          # 0xffffffffc0000000
    sldi    %r12, %r12, 32
    or      %r1, %r1, %r12

    ld      %r0, 280(%r1)
    mtmsrd  %r0
    isync
    ld      %r0, 272(%r1)
    mtcr    %r0
    ld      %r2, 112(%r1)
    ld      %r13, 120(%r1)
    ld      %r14, 128(%r1)
    ld      %r15, 136(%r1)
    ld      %r16, 144(%r1)
    ld      %r17, 152(%r1)
    ld      %r18, 160(%r1)
    ld      %r19, 168(%r1)
    ld      %r20, 176(%r1)
    ld      %r21, 184(%r1)
    ld      %r22, 192(%r1)
    ld      %r23, 200(%r1)
    ld      %r24, 208(%r1)
    ld      %r25, 216(%r1)
    ld      %r26, 224(%r1)
    ld      %r27, 232(%r1)
    ld      %r28, 240(%r1)
    ld      %r29, 248(%r1)
    ld      %r30, 256(%r1)
    ld      %r31, 264(%r1)
    addi    %r1, %r1, 304
    ld      %r0, 16(%r1)
    mtlr    %r0
    extsw   %r3, %r3
    blr
"#
);

extern "C" {
    fn of_call_raw(args: u64, entry: u64) -> i64;
}

/// A device-tree node handle (`phandle`) as the client interface names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phandle(pub u32);

/// Why a client-interface service failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfError {
    /// The entry itself returned non-zero (unknown service or bad cells).
    Call(i64),
    /// The service answered -1 ("not found" / "failed").
    NotFound,
}

/// The client-interface argument block: service name, counts, cells.
#[repr(C, align(8))]
struct CiArgs {
    service: u32,
    nargs: u32,
    nret: u32,
    cells: [u32; 12],
}

/// Largest property name `nextprop` writes (IEEE 1275: 31 chars + NUL).
pub const PROP_NAME_MAX: usize = 32;

/// The client interface of the firmware that started the kernel.
pub struct OpenFirmware {
    entry: u32,
}

/// The 32-bit real address of kernel memory `p` (the kernel is linked at
/// 0xc000000000400000 and loaded below 4 GiB).
fn real32<T: ?Sized>(p: *const T) -> u32 {
    let real = crate::bootinfo::virt_to_real(p as *const u8 as u64);
    u32::try_from(real).expect("kernel memory below 4 GiB")
}

impl OpenFirmware {
    /// Wraps the client-interface entry the firmware passed in r5.
    ///
    /// # Safety
    ///
    /// `entry` must be the firmware's client-interface entry, the firmware
    /// (VOF at 0..0x10000, or SLOF) must still be intact in memory, and the
    /// kernel must still run in real mode.
    pub unsafe fn new(entry: u32) -> Self {
        Self { entry }
    }

    /// Calls `service` with `args`; returns the `nret` result cells.
    fn call(&self, service: &CStr, args: &[u32], nret: usize) -> Result<[u32; 4], OfError> {
        let mut block = CiArgs {
            service: real32(service.as_ptr()),
            nargs: args.len() as u32,
            nret: nret as u32,
            cells: [0; 12],
        };
        block.cells[..args.len()].copy_from_slice(args);
        // SAFETY: `new`'s contract says the entry is live firmware; the block
        // and every buffer address in `args` are real addresses of kernel
        // memory that outlive the call.
        let status = unsafe { of_call_raw(u64::from(real32(&block)), u64::from(self.entry)) };
        if status != 0 {
            return Err(OfError::Call(status));
        }
        let mut rets = [0u32; 4];
        rets[..nret].copy_from_slice(&block.cells[args.len()..args.len() + nret]);
        Ok(rets)
    }

    /// `finddevice`: the node at `path`.
    pub fn finddevice(&self, path: &CStr) -> Result<Phandle, OfError> {
        let r = self.call(c"finddevice", &[real32(path.as_ptr())], 1)?[0];
        if r == u32::MAX || r == 0 {
            Err(OfError::NotFound)
        } else {
            Ok(Phandle(r))
        }
    }

    /// `getprop`: copies property `name` of `node` into `buf` (truncated to
    /// its length); returns the property's full length.
    pub fn getprop(&self, node: Phandle, name: &CStr, buf: &mut [u8]) -> Result<usize, OfError> {
        let r = self.call(
            c"getprop",
            &[
                node.0,
                real32(name.as_ptr()),
                real32(buf.as_mut_ptr()),
                buf.len() as u32,
            ],
            1,
        )?[0];
        if r == u32::MAX {
            Err(OfError::NotFound)
        } else {
            Ok(r as usize)
        }
    }

    /// `getproplen`: the length of property `name` of `node`.
    pub fn getproplen(&self, node: Phandle, name: &CStr) -> Result<usize, OfError> {
        let r = self.call(c"getproplen", &[node.0, real32(name.as_ptr())], 1)?[0];
        if r == u32::MAX {
            Err(OfError::NotFound)
        } else {
            Ok(r as usize)
        }
    }

    /// `child`: the first child of `node`, if any.
    pub fn child(&self, node: Phandle) -> Result<Option<Phandle>, OfError> {
        let r = self.call(c"child", &[node.0], 1)?[0];
        Ok((r != 0 && r != u32::MAX).then_some(Phandle(r)))
    }

    /// `peer`: the next sibling of `node` (the root for `Phandle(0)`).
    pub fn peer(&self, node: Phandle) -> Result<Option<Phandle>, OfError> {
        let r = self.call(c"peer", &[node.0], 1)?[0];
        Ok((r != 0 && r != u32::MAX).then_some(Phandle(r)))
    }

    /// `nextprop`: the name of the property after `previous` (the first for
    /// an empty name) into `buf`; `Ok(false)` when there is none.
    pub fn nextprop(
        &self,
        node: Phandle,
        previous: &CStr,
        buf: &mut [u8; PROP_NAME_MAX],
    ) -> Result<bool, OfError> {
        buf.fill(0);
        let r = self.call(
            c"nextprop",
            &[node.0, real32(previous.as_ptr()), real32(buf.as_mut_ptr())],
            1,
        )?[0];
        match r {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(OfError::NotFound),
        }
    }

    /// `instance-to-package`: the node an open instance (`ihandle`, e.g.
    /// `/chosen`'s `cpu` or `stdout`) belongs to.
    pub fn instance_to_package(&self, ihandle: u32) -> Result<Phandle, OfError> {
        let r = self.call(c"instance-to-package", &[ihandle], 1)?[0];
        if r == u32::MAX || r == 0 {
            Err(OfError::NotFound)
        } else {
            Ok(Phandle(r))
        }
    }

    /// Reads property `name` as one big-endian u32 cell.
    pub fn getprop_u32(&self, node: Phandle, name: &CStr) -> Result<u32, OfError> {
        let mut buf = [0u8; 4];
        let len = self.getprop(node, name, &mut buf)?;
        if len < 4 {
            return Err(OfError::NotFound);
        }
        Ok(u32::from_be_bytes(buf))
    }

    /// Iterates over the children of `node`.
    pub fn children(&self, node: Phandle) -> Children<'_> {
        Children {
            of: self,
            next: self.child(node).ok().flatten(),
        }
    }
}

/// Iterator over a node's children (`child`, then `peer`).
pub struct Children<'a> {
    of: &'a OpenFirmware,
    next: Option<Phandle>,
}

impl Iterator for Children<'_> {
    type Item = Phandle;

    fn next(&mut self) -> Option<Phandle> {
        let cur = self.next?;
        self.next = self.of.peer(cur).ok().flatten();
        Some(cur)
    }
}
