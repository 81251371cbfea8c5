//! `as_att64`, `as_det64`, `as_seth64`, `as_geth64`, `as_puth64` and
//! `as_getsrval64`: the current process's 64-bit address space, with their
//! errors.

use super::*;

service_error! {
    /// Why `as_att64` refused (C: returns 0 and sets errno).
    AsAtt64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The handle is malformed.
        BadHandle(VmHandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The handle names a `vm_galloc` segment: global kernel memory
        /// reaches a process only through `vm_guatt`.
        NotAttachable {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// No free region, or no room to map it.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `as_det64` refused.
    AsDet64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The region is not one `as_att`/`as_att64`/`as_seth64` attached
        /// (kernel, text, private, a `vm_guatt` attachment, or a reserved
        /// register).
        NotDetachable {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// Nothing is mapped at the address.
        Unallocated {
            /// The address passed.
            addr: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `as_seth64` refused.
    AsSeth64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The address is in a reserved segment register (0, 1, 2 or 14)
        /// of a 32-bit process or kernel process: kernel, text, private
        /// data and the shared library data stay as they are (the same
        /// registers `as_det64` refuses to take down).
        ReservedRegister {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The handle is malformed.
        BadHandle(VmHandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The handle names a `vm_galloc` segment: global kernel memory
        /// reaches a process only through `vm_guatt`.
        NotAttachable {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The mapping could not be made.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `as_geth64`/`as_getsrval64` found no handle (C: `INVLSID`).
    AsGeth64Error {
        /// Called in an environment the service does not allow.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// Nothing is mapped at the address.
        Unmapped {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The address maps global kernel memory (a `vm_guatt`
        /// attachment): its handle would reach every page of the
        /// allocation, so it is not handed out.
        GlobalMemory {
            /// The address passed.
            addr: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `as_puth64` refused.
    AsPuth64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The handle is malformed.
        BadHandle(VmHandleError) => Inval,
        /// The current process holds no `as_geth64` hold on this segment.
        NoHold {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
    }
}

impl<V: AixVm> Aix<V> {
    /// Whether `addr64` is in segment register 0, 1, 2 or 14 of a 32-bit
    /// address space (a 32-bit process, or the kernel's registers kernel
    /// processes use): neither `as_seth64` nor `as_det64` may touch those.
    pub(super) fn reserved_register(&self, space: Space, addr64: u64) -> bool {
        addr64 >> SEGSHIFT < NSEGS as u64
            && self
                .contexts
                .get(&space)
                .is_some_and(|c| c.model == AddressModel::Bits32)
            && SegmentRegister::of_address(addr64).is_reserved()
    }

    pub(super) fn ctx64(&self, service: &str) -> Result<(Space, u64), bool> {
        let space = self.process_context(service)?;
        let end = self
            .contexts
            .get(&space)
            .map(Context::addr_end)
            .ok_or(false)?;
        Ok((space, end))
    }

    /// `as_att64`: maps the segment of `handle` at a free region of the
    /// current process (the shmat area of a 64-bit process, registers
    /// 3..13/15 of a 32-bit process or a kernel process), shared across
    /// fork, and returns the region's base plus `offset` (its upper 4 bits
    /// ignored: only the 28-bit segment offset is used).
    ///
    /// The C entry returns 0 on failure and records the errno for
    /// `vmm_errno()` ([`Aix::errno`]).
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// `EINVAL`: [`AsAtt64Error::WrongEnvironment`],
    /// [`AsAtt64Error::NoAddressSpace`], [`AsAtt64Error::BadHandle`],
    /// [`AsAtt64Error::NoSuchSegment`], [`AsAtt64Error::NotAttachable`].
    /// `ENOMEM`: [`AsAtt64Error::NoMemory`] (no free region, or the core
    /// cannot map).
    pub fn as_att64(
        &mut self,
        handle: impl IntoVmHandle,
        offset: c_int,
    ) -> Result<u64, AsAtt64Error> {
        let space = match self.process_context("as_att64") {
            Err(true) => return Err(AsAtt64Error::WrongEnvironment),
            Err(false) => return Err(AsAtt64Error::NoAddressSpace),
            Ok(s) => s,
        };
        let h = handle.into_vm_handle().map_err(AsAtt64Error::BadHandle)?;
        let sid = match self.attachable(h.sid()) {
            Err(true) => return Err(AsAtt64Error::NotAttachable { sid: h.sid() }),
            Err(false) => return Err(AsAtt64Error::NoSuchSegment { sid: h.sid() }),
            Ok(sid) => sid,
        };
        let esid = self
            .place_user(space, 1)
            .ok_or(AsAtt64Error::NoMemory(Shortage::Regions))?;
        self.vm
            .map(space, Esid::new(esid), &region(h, sid))
            .map_err(|e| AsAtt64Error::NoMemory(e.shortage()))?;
        if let Some(c) = self.contexts.get_mut(&space) {
            c.regions.insert(esid);
        }
        self.refresh_adspace(space);
        Ok((esid << SEGSHIFT) | (offset as u32 as u64 & SEGOFFSET))
    }

    /// `as_det64`: takes down the `as_att64`/`as_att`/`as_seth64` region
    /// covering `addr64` in the current process.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`AsDet64Error::WrongEnvironment`],
    /// [`AsDet64Error::NoAddressSpace`], [`AsDet64Error::OutOfRange`],
    /// [`AsDet64Error::Unallocated`], [`AsDet64Error::NotDetachable`]
    /// (kernel, text, private, reserved registers, `vm_guatt`
    /// attachments).
    pub fn as_det64(&mut self, addr64: u64) -> Result<(), AsDet64Error> {
        let (space, end) = match self.ctx64("as_det64") {
            Err(true) => return Err(AsDet64Error::WrongEnvironment),
            Err(false) => return Err(AsDet64Error::NoAddressSpace),
            Ok(x) => x,
        };
        if addr64 >= end {
            return Err(AsDet64Error::OutOfRange { addr: addr64 });
        }
        let esid = addr64 >> SEGSHIFT;
        if self.vm.mapping(space, Esid::new(esid)).is_none() {
            return Err(AsDet64Error::Unallocated { addr: addr64 });
        }
        let reserved = self.reserved_register(space, addr64);
        let c = self
            .contexts
            .get_mut(&space)
            .ok_or(AsDet64Error::NoAddressSpace)?;
        if reserved || !c.regions.remove(&esid) {
            return Err(AsDet64Error::NotDetachable { addr: addr64 });
        }
        self.unmap_logged(space, esid);
        self.refresh_adspace(space);
        Ok(())
    }

    /// `as_seth64`: maps the segment of `handle` at the fixed region
    /// covering `addr64` in the current process, replacing whatever was
    /// there (a `vm_guatt` attachment that loses a segment is taken down
    /// whole). The new region is detachable with `as_det64` and shared
    /// across fork.
    ///
    /// In a 32-bit process or a kernel process the reserved segment
    /// registers 0, 1, 2 and 14 (kernel, text, private data, shared
    /// library data) are refused, the same ones `as_det64` refuses.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// `EINVAL`: [`AsSeth64Error::WrongEnvironment`],
    /// [`AsSeth64Error::NoAddressSpace`], [`AsSeth64Error::OutOfRange`],
    /// [`AsSeth64Error::ReservedRegister`], [`AsSeth64Error::BadHandle`], [`AsSeth64Error::NoSuchSegment`],
    /// [`AsSeth64Error::NotAttachable`]. `ENOMEM`:
    /// [`AsSeth64Error::NoMemory`] (nothing changed: the core replaces the
    /// mapping atomically and the rest of an attachment is taken down only
    /// after that).
    pub fn as_seth64(
        &mut self,
        addr64: u64,
        handle: impl IntoVmHandle,
    ) -> Result<(), AsSeth64Error> {
        let (space, end) = match self.ctx64("as_seth64") {
            Err(true) => return Err(AsSeth64Error::WrongEnvironment),
            Err(false) => return Err(AsSeth64Error::NoAddressSpace),
            Ok(x) => x,
        };
        if addr64 >= end {
            return Err(AsSeth64Error::OutOfRange { addr: addr64 });
        }
        if self.reserved_register(space, addr64) {
            return Err(AsSeth64Error::ReservedRegister { addr: addr64 });
        }
        let h = handle.into_vm_handle().map_err(AsSeth64Error::BadHandle)?;
        let sid = match self.attachable(h.sid()) {
            Err(true) => return Err(AsSeth64Error::NotAttachable { sid: h.sid() }),
            Err(false) => return Err(AsSeth64Error::NoSuchSegment { sid: h.sid() }),
            Ok(sid) => sid,
        };
        let esid = addr64 >> SEGSHIFT;
        // What goes: the mapping at esid, and the rest of a vm_guatt
        // attachment it belongs to.
        let attachment = self
            .contexts
            .get(&space)
            .and_then(|c| c.attachments.iter().position(|t| t.esids.contains(&esid)));
        let others: Vec<u64> = match attachment {
            Some(i) => self.contexts[&space].attachments[i]
                .esids
                .clone()
                .filter(|&e| e != esid)
                .collect(),
            None => Vec::new(),
        };
        // The core replaces the mapping at esid in one step (nothing
        // changes if it fails); the other segments of the attachment go
        // only after that succeeded.
        self.vm
            .replace(space, Esid::new(esid), &region(h, sid))
            .map_err(|e| AsSeth64Error::NoMemory(e.shortage()))?;
        for e in others {
            self.unmap_logged(space, e);
        }
        if let Some(c) = self.contexts.get_mut(&space) {
            if let Some(i) = attachment {
                c.attachments.remove(i);
            }
            c.regions.insert(esid);
        }
        self.refresh_adspace(space);
        Ok(())
    }

    pub(super) fn geth64_common(
        &mut self,
        space: Space,
        end: u64,
        addr64: u64,
        hold: bool,
    ) -> Result<vmhandle_t, AsGeth64Error> {
        if addr64 >= end {
            return Err(AsGeth64Error::OutOfRange { addr: addr64 });
        }
        let m = self
            .vm
            .mapping(space, Esid::new(addr64 >> SEGSHIFT))
            .ok_or(AsGeth64Error::Unmapped { addr: addr64 })?;
        if self.galloc_sids.contains(&m.sid) {
            return Err(AsGeth64Error::GlobalMemory { addr: addr64 });
        }
        if hold {
            self.take_hold(space, m.sid)
                .map_err(|_| AsGeth64Error::Unmapped { addr: addr64 })?;
        }
        Ok(m.handle_raw())
    }

    /// `as_geth64`: the handle of the segment at `addr64` in the current
    /// process, with a hold that defers its deletion (`vms_delete`) until
    /// `as_puth64`. Until then the segment stays fully usable: the handle
    /// can be attached again ([`Aix::as_att64`], [`Aix::as_att`],
    /// [`Aix::vm_att`]) and fork inherits its mappings.
    ///
    /// An address attached with [`Aix::vm_guatt`] gives no handle
    /// ([`AsGeth64Error::GlobalMemory`], C `INVLSID`): the handle names the
    /// whole `vm_galloc` segment, so `as_att64` with it would reach pages
    /// outside the window `vm_guatt` allowed.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All C `INVLSID`: [`AsGeth64Error::WrongEnvironment`],
    /// [`AsGeth64Error::NoAddressSpace`], [`AsGeth64Error::OutOfRange`],
    /// [`AsGeth64Error::Unmapped`], [`AsGeth64Error::GlobalMemory`].
    pub fn as_geth64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        let (space, end) = match self.ctx64("as_geth64") {
            Err(true) => return Err(AsGeth64Error::WrongEnvironment),
            Err(false) => return Err(AsGeth64Error::NoAddressSpace),
            Ok(x) => x,
        };
        self.geth64_common(space, end, addr64, true)
    }

    /// `as_puth64`: releases the current process's `as_geth64` hold on the
    /// segment `handle` names (the handle is authoritative, not what is
    /// mapped at `addr64` now). The last put of a `vms_delete`d segment
    /// destroys it.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`AsPuth64Error::WrongEnvironment`],
    /// [`AsPuth64Error::NoAddressSpace`], [`AsPuth64Error::OutOfRange`],
    /// [`AsPuth64Error::BadHandle`], [`AsPuth64Error::NoHold`] (a put
    /// without a get is refused, never counted below zero).
    pub fn as_puth64(
        &mut self,
        addr64: u64,
        handle: impl IntoVmHandle,
    ) -> Result<(), AsPuth64Error> {
        let (space, end) = match self.ctx64("as_puth64") {
            Err(true) => return Err(AsPuth64Error::WrongEnvironment),
            Err(false) => return Err(AsPuth64Error::NoAddressSpace),
            Ok(x) => x,
        };
        if addr64 >= end {
            return Err(AsPuth64Error::OutOfRange { addr: addr64 });
        }
        let h = handle.into_vm_handle().map_err(AsPuth64Error::BadHandle)?;
        if !Sid::try_new(h.sid()).is_some_and(|sid| self.release_hold(space, sid)) {
            return Err(AsPuth64Error::NoHold { sid: h.sid() });
        }
        Ok(())
    }

    /// `as_getsrval64`: as `as_geth64` without a hold; never pair it with
    /// `as_puth64`.
    ///
    /// Environment: process; interrupt only when the interrupted address
    /// space is 32-bit or a kernel process's (a 16-register lookup).
    ///
    /// # Errors
    /// All C `INVLSID`: [`AsGeth64Error::WrongEnvironment`] (interrupt on
    /// a 64-bit space), [`AsGeth64Error::NoAddressSpace`],
    /// [`AsGeth64Error::OutOfRange`], [`AsGeth64Error::Unmapped`],
    /// [`AsGeth64Error::GlobalMemory`].
    pub fn as_getsrval64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        let (space, end) = if self.vm.environment() == Environment::Interrupt {
            let space = self.current_context();
            let c = self
                .contexts
                .get(&space)
                .ok_or(AsGeth64Error::NoAddressSpace)?;
            if c.model == AddressModel::Bits64 {
                log::warn!(
                    "as_getsrval64: interrupt environment on a 64-bit address space; refused"
                );
                return Err(AsGeth64Error::WrongEnvironment);
            }
            (space, c.addr_end())
        } else {
            match self.ctx64("as_getsrval64") {
                Err(true) => return Err(AsGeth64Error::WrongEnvironment),
                Err(false) => return Err(AsGeth64Error::NoAddressSpace),
                Ok(x) => x,
            }
        };
        self.geth64_common(space, end, addr64, false)
    }
}
