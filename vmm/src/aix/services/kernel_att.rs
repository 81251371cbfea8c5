//! `vm_att` and `vm_det`: temporary attachments in the kernel's window, with
//! their errors.

use super::*;

service_error! {
    /// Why `vm_att` refused. AIX panics when no region is free; this
    /// project logs an error and fails instead.
    VmAttError {
        /// The handle is malformed.
        BadHandle(VmHandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// Every temporary-attach slot of the current context is in use.
        NoFreeRegion => NoMem,
        /// The mapping could not be made.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vm_det` refused. AIX halts the system; this project logs an
    /// error and changes nothing.
    VmDetError {
        /// `eaddr` is not in a region `vm_att` attached in this context
        /// (unmapped, or a system region).
        NotAttached {
            /// The address passed.
            eaddr: u64,
        } => Inval,
    }
}

impl<V: AixVm> Aix<V> {
    /// `vm_att`: maps the segment of `handle` at a free slot of the
    /// kernel's `vm_att` window with the handle's key, and returns the
    /// address of `offset` in it (bits of `offset` above the segment
    /// offset are ignored). The slot belongs to the current context (the
    /// process, or the kernel for kernel processes and interrupts) and is
    /// reachable in supervisor state only.
    ///
    /// `offset` is not checked against the segment's size: as on AIX,
    /// `vm_att` only makes the segment addressable. An offset in no page
    /// of the segment (at or past its size rounded up to 4 KB) gives an
    /// address whose access faults
    /// ([`VmFaultReason::OutOfRange`](crate::platform::VmFaultReason::OutOfRange),
    /// a kernel fault, since the window is supervisor-only); a caller
    /// that takes the offset from an untrusted source checks it against
    /// the segment's size itself.
    ///
    /// AIX panics when no slot is free; this logs an error and fails.
    ///
    /// Environment: process or interrupt.
    ///
    /// # Errors
    /// [`VmAttError::BadHandle`], [`VmAttError::NoSuchSegment`] (a segment
    /// `vms_delete`d while held is still attachable until its last put),
    /// [`VmAttError::NoFreeRegion`] (logged as an error),
    /// [`VmAttError::NoMemory`].
    pub fn vm_att(&mut self, handle: impl IntoVmHandle, offset: u64) -> Result<u64, VmAttError> {
        let h = handle.into_vm_handle().map_err(VmAttError::BadHandle)?;
        let no_such = VmAttError::NoSuchSegment { sid: h.sid() };
        let sid = Sid::try_new(h.sid()).ok_or(no_such)?;
        let info = self.vm.segment(sid).ok_or(no_such)?;
        let owner = self.current_context();
        let Some(esid) = free_run(&self.vm, Space::Kernel, self.config.vm_att_esids(), 1) else {
            log::error!(
                "vm_att: no free region for handle {:#x} (AIX would panic); refused",
                h.raw()
            );
            return Err(VmAttError::NoFreeRegion);
        };
        let how = kernel_only(h, sid, info.prot);
        self.vm
            .map(Space::Kernel, Esid::new(esid), &how)
            .map_err(|e| VmAttError::NoMemory(e.shortage()))?;
        self.vm_att.insert(esid, owner);
        Ok((esid << SEGSHIFT) | (offset & SEGOFFSET))
    }

    /// `vm_det`: takes down the `vm_att` slot containing `eaddr` that the
    /// current context attached.
    ///
    /// AIX halts the system on a bad address; this logs an error and
    /// changes nothing.
    ///
    /// Environment: process or interrupt.
    ///
    /// # Errors
    /// [`VmDetError::NotAttached`] when `eaddr` is not in such a slot.
    pub fn vm_det(&mut self, eaddr: u64) -> Result<(), VmDetError> {
        let esid = eaddr >> SEGSHIFT;
        let owner = self.current_context();
        if self.vm_att.get(&esid) != Some(&owner) {
            log::error!("vm_det: {eaddr:#x} is not a vm_att region of this context (AIX would halt); ignored");
            return Err(VmDetError::NotAttached { eaddr });
        }
        self.vm_att.remove(&esid);
        self.unmap_logged(Space::Kernel, esid);
        Ok(())
    }
}
