//! `vms_create` and `vms_delete`: virtual memory objects, with their errors.

use super::*;

service_error! {
    /// Why `vms_create` refused.
    VmsCreateError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `type` lacks `V_WORKING` or has bits other than `V_WORKING |
        /// V_SYSTEM | V_UREAD | V_NOEXEC`.
        BadType {
            /// The type passed.
            type_flags: c_int,
        } => Inval,
        /// `size` is zero, negative or larger than a segment.
        BadSize {
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// The segment could not be created.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vms_delete` refused.
    VmsDeleteError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The vmid names no segment `vms_create` made, or one already
        /// deleted.
        BadVmid {
            /// The vmid passed.
            vmid: vmid_t,
        } => Inval,
        /// The segment is mapped somewhere the services did not map it
        /// (so they cannot take the mapping down first).
        MappedElsewhere {
            /// The vmid passed.
            vmid: vmid_t,
        } => Inval,
    }
}

impl<V: AixVm> Aix<V> {
    /// `vms_create`: creates a zero-filled working segment of `size` bytes
    /// (rounded up to 4 KB, at most one segment) and returns its id (its
    /// SID). `type` takes the `vm_galloc` flags: `V_WORKING` required,
    /// `V_UREAD` gives PP 01 pages, `V_NOEXEC` no-execute. The C entry's
    /// `dev`, `uplim` and `downlim` are ignored, as AIX documents for
    /// working segments.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`VmsCreateError::WrongEnvironment`], [`VmsCreateError::BadType`],
    /// [`VmsCreateError::BadSize`] (`EINVAL`); [`VmsCreateError::NoMemory`]
    /// (`ENOMEM`).
    pub fn vms_create(
        &mut self,
        type_flags: c_int,
        size: vmsize_t,
    ) -> Result<vmid_t, VmsCreateError> {
        if self.in_interrupt("vms_create") {
            return Err(VmsCreateError::WrongEnvironment);
        }
        if !type_flags_ok(type_flags) {
            return Err(VmsCreateError::BadType { type_flags });
        }
        let bytes = round_to_page(size)
            .filter(|&b| b <= SEGSIZE)
            .ok_or(VmsCreateError::BadSize { size })?;
        let sid = self
            .vm
            .create_segment((bytes / PAGESIZE) as u32, page_prot(type_flags), false)
            .map_err(|e| VmsCreateError::NoMemory(e.shortage()))?;
        self.vms.insert(sid.as_u64());
        Ok(sid.as_u64() as vmid_t)
    }

    /// `vms_delete`: deletes a segment `vms_create` made. Without holds it
    /// is unmapped from every region the services attached it to and
    /// destroyed at once. While `as_geth`/`as_geth64` holds are
    /// outstanding the delete is deferred: the segment stays mapped and
    /// usable, and goes (mappings included) at the last put.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`VmsDeleteError::WrongEnvironment`],
    /// [`VmsDeleteError::BadVmid`] (not a live `vms_create` segment, or
    /// already deleted), [`VmsDeleteError::MappedElsewhere`].
    pub fn vms_delete(&mut self, vmid: vmid_t) -> Result<(), VmsDeleteError> {
        if self.in_interrupt("vms_delete") {
            return Err(VmsDeleteError::WrongEnvironment);
        }
        let bad = VmsDeleteError::BadVmid { vmid };
        if vmid < 0 || !self.vms.contains(&(vmid as u64)) {
            return Err(bad);
        }
        let sid = Sid::try_new(vmid as u64).ok_or(bad)?;
        let info = self.vm.segment(sid).ok_or(bad)?;
        if info.delete_pending {
            return Err(bad);
        }
        if info.holds > 0 {
            self.vm.delete_segment(sid).map_err(|_| bad)?;
            return Ok(());
        }
        if self.mappings_of(sid).len() as u32 != info.attaches {
            return Err(VmsDeleteError::MappedElsewhere { vmid });
        }
        self.unmap_everywhere(sid);
        self.vms.remove(&sid.as_u64());
        if let Err(e) = self.vm.delete_segment(sid) {
            log::error!("vms_delete: core refused SID {vmid:#x}: {e:?}");
        }
        Ok(())
    }
}
