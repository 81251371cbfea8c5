//! `getadsp`, `as_att`, `as_det`, `as_geth`, `as_puth` and `as_getsrval`: the
//! 32-bit model's segment registers (`adspace_t`), with their errors.

use super::*;

service_error! {
    /// Why `getadsp` found no address space.
    GetadspError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The current process is not known to the services.
        NoAddressSpace => Inval,
    }
}

service_error! {
    /// Why `as_att` refused (C: returns NULL).
    AsAttError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not one `getadsp` handed out for a
        /// live address space.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
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
        /// All of registers 3..13 and 15 are allocated.
        NoFreeRegister => NoMem,
        /// The mapping could not be made.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `as_det` refused.
    AsDetError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not a live one.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The address is in register 0, 1, 2 or 14.
        ReservedRegister {
            /// The register number.
            sr: usize,
        } => Inval,
        /// The register is not allocated.
        Unallocated {
            /// The register number.
            sr: usize,
        } => Inval,
        /// The register holds something `as_att` did not attach (text,
        /// data, a `vm_guatt` attachment).
        NotAttached {
            /// The register number.
            sr: usize,
        } => Inval,
    }
}

service_error! {
    /// Why `as_geth`/`as_getsrval` found no handle (C: `INVLSID`).
    AsGethError {
        /// Called in an environment the service does not allow.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not a live one.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The register is not allocated.
        Unallocated {
            /// The register number.
            sr: usize,
        } => Inval,
        /// The register maps global kernel memory (a `vm_guatt`
        /// attachment): its handle would reach every page of the
        /// allocation, so it is not handed out.
        GlobalMemory {
            /// The register number.
            sr: usize,
        } => Inval,
    }
}

service_error! {
    /// Why `as_puth` refused (C: returns nothing, logs a warning).
    AsPuthError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not a live one.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The handle is malformed.
        BadHandle(VmHandleError) => Inval,
        /// No `as_geth` hold on this segment is outstanding in this address
        /// space.
        NoHold {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
    }
}

impl<V: AixVm> Aix<V> {
    /// `getadsp`: the current process's `adspace_t` (a kernel process
    /// gets the kernel's), refreshed from the address space. The pointer
    /// stays valid until the process exits; pass it to `as_att`,
    /// `as_det`, `as_geth`, `as_puth`, `as_getsrval`. After the exit those
    /// refuse it (`BadAdspace`): its memory is never reused for another
    /// process's copy, and reads through it see an empty address space.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`GetadspError::WrongEnvironment`], [`GetadspError::NoAddressSpace`].
    pub fn getadsp(&mut self) -> Result<NonNull<adspace_t>, GetadspError> {
        let space = match self.process_context("getadsp") {
            Err(true) => return Err(GetadspError::WrongEnvironment),
            Err(false) => return Err(GetadspError::NoAddressSpace),
            Ok(s) => s,
        };
        self.refresh_adspace(space);
        let c = self
            .contexts
            .get_mut(&space)
            .ok_or(GetadspError::NoAddressSpace)?;
        Ok(NonNull::from(&mut *c.adspace))
    }

    /// `as_att`: maps the segment of `handle` at the lowest free segment
    /// register of `adsp` among 3..13 and 15 (never 0, 1, 2, 14), with the
    /// handle's key, inherited across fork, and returns `(sr << 28) |
    /// (offset & 0x0FFF_FFFF)`. The region is addressable at once if
    /// `adsp` is current, else when it next becomes current.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`AsAttError::WrongEnvironment`], [`AsAttError::BadAdspace`],
    /// [`AsAttError::BadHandle`], [`AsAttError::NoSuchSegment`],
    /// [`AsAttError::NotAttachable`], [`AsAttError::NoFreeRegister`] (C:
    /// NULL), [`AsAttError::NoMemory`].
    pub fn as_att(
        &mut self,
        adsp: *const adspace_t,
        handle: impl IntoVmHandle,
        offset: u64,
    ) -> Result<u64, AsAttError> {
        if self.in_interrupt("as_att") {
            return Err(AsAttError::WrongEnvironment);
        }
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsAttError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let h = handle.into_vm_handle().map_err(AsAttError::BadHandle)?;
        let sid = match self.attachable(h.sid()) {
            Err(true) => return Err(AsAttError::NotAttachable { sid: h.sid() }),
            Err(false) => return Err(AsAttError::NoSuchSegment { sid: h.sid() }),
            Ok(sid) => sid,
        };
        let sr = SegmentRegister::attachable()
            .find(|sr| {
                self.vm
                    .mapping(space, Esid::new(sr.index() as u64))
                    .is_none()
            })
            .ok_or(AsAttError::NoFreeRegister)?;
        let esid = sr.index() as u64;
        self.vm
            .map(space, Esid::new(esid), &region(h, sid))
            .map_err(|e| AsAttError::NoMemory(e.shortage()))?;
        if let Some(c) = self.contexts.get_mut(&space) {
            c.regions.insert(esid);
        }
        self.refresh_adspace(space);
        Ok((esid << SEGSHIFT) | (offset & SEGOFFSET))
    }

    /// `as_det`: takes down the `as_att` region in the segment register
    /// that the upper 4 bits of the 32-bit `eaddr` name, freeing it.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`AsDetError::WrongEnvironment`],
    /// [`AsDetError::BadAdspace`], [`AsDetError::ReservedRegister`] (0, 1,
    /// 2, 14), [`AsDetError::Unallocated`], [`AsDetError::NotAttached`]
    /// (text, data, a `vm_guatt` attachment).
    pub fn as_det(&mut self, adsp: *const adspace_t, eaddr: u64) -> Result<(), AsDetError> {
        if self.in_interrupt("as_det") {
            return Err(AsDetError::WrongEnvironment);
        }
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsDetError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let sr = SegmentRegister::of_address(eaddr);
        if sr.is_reserved() {
            return Err(AsDetError::ReservedRegister { sr: sr.index() });
        }
        let esid = sr.index() as u64;
        if self.vm.mapping(space, Esid::new(esid)).is_none() {
            return Err(AsDetError::Unallocated { sr: sr.index() });
        }
        let c = self
            .contexts
            .get_mut(&space)
            .ok_or(AsDetError::BadAdspace {
                adsp: adsp as usize,
            })?;
        if !c.regions.remove(&esid) {
            return Err(AsDetError::NotAttached { sr: sr.index() });
        }
        self.unmap_logged(space, esid);
        self.refresh_adspace(space);
        Ok(())
    }

    pub(super) fn geth_common(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
        hold: bool,
    ) -> Result<vmhandle_t, AsGethError> {
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsGethError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let sr = SegmentRegister::of_address(addr);
        let m = self
            .vm
            .mapping(space, Esid::new(sr.index() as u64))
            .ok_or(AsGethError::Unallocated { sr: sr.index() })?;
        if self.galloc_sids.contains(&m.sid) {
            return Err(AsGethError::GlobalMemory { sr: sr.index() });
        }
        if hold {
            self.take_hold(space, m.sid)
                .map_err(|_| AsGethError::Unallocated { sr: sr.index() })?;
        }
        Ok(m.handle_raw())
    }

    pub(super) fn take_hold(&mut self, space: Space, sid: Sid) -> Result<(), CoreError> {
        self.vm.hold_segment(sid)?;
        if let Some(c) = self.contexts.get_mut(&space) {
            *c.holds.entry(sid).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Releases one hold `space` took on `sid`; `false` if it has none.
    pub(super) fn release_hold(&mut self, space: Space, sid: Sid) -> bool {
        let Some(c) = self.contexts.get_mut(&space) else {
            return false;
        };
        match c.holds.get_mut(&sid) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    c.holds.remove(&sid);
                }
            }
            _ => return false,
        }
        self.put_one_hold(sid);
        true
    }

    /// Puts one hold on `sid` in the core. The last put of a segment
    /// `vms_delete`d while held destroys it and its mappings, so the
    /// mappings the services recorded go first, and the deferred delete is
    /// finished afterwards.
    pub(super) fn put_one_hold(&mut self, sid: Sid) {
        if self
            .vm
            .segment(sid)
            .is_some_and(|i| i.delete_pending && i.holds == 1)
        {
            self.unmap_everywhere(sid);
        }
        if let Err(e) = self.vm.put_segment(sid) {
            log::error!("aix: put of SID {:#x} failed: {e:?}", sid.as_u64());
        }
        self.finish_pending_delete(sid.as_u64());
    }

    /// `as_geth`: the handle in the segment register of `addr` in `adsp`,
    /// with a hold that defers the segment's deletion until `as_puth`.
    /// A register holding a `vm_guatt` attachment gives no handle
    /// ([`AsGethError::GlobalMemory`]), as for [`Aix::as_geth64`].
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`AsGethError::WrongEnvironment`], [`AsGethError::BadAdspace`],
    /// [`AsGethError::Unallocated`], [`AsGethError::GlobalMemory`]
    /// (C: `INVLSID`).
    pub fn as_geth(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
    ) -> Result<vmhandle_t, AsGethError> {
        if self.in_interrupt("as_geth") {
            return Err(AsGethError::WrongEnvironment);
        }
        self.geth_common(adsp, addr, true)
    }

    /// `as_puth`: releases one `as_geth` hold of `adsp` on the segment of
    /// `handle`. The last put of a `vms_delete`d segment destroys it.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`AsPuthError::WrongEnvironment`], [`AsPuthError::BadAdspace`],
    /// [`AsPuthError::BadHandle`], [`AsPuthError::NoHold`] (a put without
    /// a get is refused, never counted below zero).
    pub fn as_puth(
        &mut self,
        adsp: *const adspace_t,
        handle: impl IntoVmHandle,
    ) -> Result<(), AsPuthError> {
        if self.in_interrupt("as_puth") {
            return Err(AsPuthError::WrongEnvironment);
        }
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsPuthError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let h = handle.into_vm_handle().map_err(AsPuthError::BadHandle)?;
        if !Sid::try_new(h.sid()).is_some_and(|sid| self.release_hold(space, sid)) {
            return Err(AsPuthError::NoHold { sid: h.sid() });
        }
        Ok(())
    }

    /// `as_getsrval`: as `as_geth` without a hold; its handle must never be
    /// given to `as_puth`.
    ///
    /// Environment: process or interrupt.
    ///
    /// # Errors
    /// [`AsGethError::BadAdspace`], [`AsGethError::Unallocated`],
    /// [`AsGethError::GlobalMemory`] (C: `INVLSID`).
    pub fn as_getsrval(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
    ) -> Result<vmhandle_t, AsGethError> {
        self.geth_common(adsp, addr, false)
    }
}
