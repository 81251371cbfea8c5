//! `vm_galloc`, `vm_gfree`, `vm_guatt` and `vm_gudet`: global kernel memory
//! and its attachment to user address spaces, with their errors.

use super::*;

service_error! {
    /// Why `vm_galloc` refused.
    VmGallocError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `type` lacks `V_WORKING`.
        MissingWorking {
            /// The type passed.
            type_flags: c_int,
        } => Inval,
        /// `type` has bits other than `V_WORKING | V_SYSTEM | V_UREAD | V_NOEXEC`.
        UnknownTypeFlags {
            /// The type passed.
            type_flags: c_int,
        } => Inval,
        /// `size` is zero, negative or too large to round.
        BadSize {
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// No run of free segments this long is left in the galloc range.
        RangeExhausted {
            /// Segments the allocation needs.
            segments: u64,
        } => NoSpc,
        /// A resource other than address range ran out.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vm_gfree` refused.
    VmGfreeError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// (eaddr, rounded size) is not exactly one live allocation.
        NoSuchAllocation {
            /// The address passed.
            eaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
    }
}

service_error! {
    /// Why `vm_guatt` refused.
    VmGuattError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `flags` is not `VU_ANYWHERE`.
        BadFlags {
            /// The flags passed.
            flags: c_long,
        } => Inval,
        /// `key` is neither `VM_PRIV` nor `VM_UNPRIV`.
        BadKey {
            /// The key passed.
            key: vmkey_t,
        } => Inval,
        /// `size` is zero or negative.
        BadSize {
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// `*uaddr` was not NULL on entry.
        UaddrNotNull {
            /// The value found at `*uaddr`.
            uaddr: u64,
        } => Inval,
        /// [kaddr, kaddr + size) is not inside one `vm_galloc` region.
        NotInAllocation {
            /// The kernel address passed.
            kaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// The current process has no user address space (a kernel process,
        /// or no process at all).
        NoUserAddressSpace => Inval,
        /// No run of free user segments, or no room to map them.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vm_gudet` refused.
    VmGudetError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `flags` is not `VU_ANYWHERE`.
        BadFlags {
            /// The flags passed.
            flags: c_long,
        } => Inval,
        /// [kaddr, kaddr + size) is not inside a live `vm_galloc` region
        /// (for example after `vm_gfree`).
        NotAllocated {
            /// The kernel address passed.
            kaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// The current process has no attachment (kaddr, uaddr, size).
        NoSuchAttachment {
            /// The kernel address passed.
            kaddr: u64,
            /// The user address passed.
            uaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
    }
}

impl<V: AixVm> Aix<V> {
    /// `vm_galloc`: allocates `size` bytes (rounded up to 4 KB) of
    /// zero-filled global kernel memory in segments of its own at the
    /// lowest free run of the galloc range, and returns its kernel address
    /// (a segment boundary). Pages are PP 00 (kernel read-write, no user
    /// access) or, with `V_UREAD`, PP 01 (user read-only through a
    /// `VM_UNPRIV` attachment); `V_NOEXEC` forbids instruction fetch.
    ///
    /// Frames are taken at first touch (zero-fill on demand), so running
    /// out of frames shows later as a fault of that access, not as an
    /// error here.
    ///
    /// Environment: process (and kernel process) only.
    ///
    /// # Errors
    /// [`VmGallocError::WrongEnvironment`] in an interrupt handler;
    /// [`VmGallocError::MissingWorking`] / [`VmGallocError::UnknownTypeFlags`]
    /// for a bad `type`; [`VmGallocError::BadSize`] for `size <= 0`;
    /// [`VmGallocError::RangeExhausted`] (`ENOSPC`) when no run of free
    /// segments is left, which includes every positive size larger than
    /// the range (up to `LONG_MAX`, whose rounding up to 4 KB does not
    /// fit `vmsize_t`); [`VmGallocError::NoMemory`] (`ENOMEM`) when the
    /// core runs out of SIDs or metadata.
    pub fn vm_galloc(&mut self, type_flags: c_int, size: vmsize_t) -> Result<u64, VmGallocError> {
        if self.in_interrupt("vm_galloc") {
            return Err(VmGallocError::WrongEnvironment);
        }
        if type_flags & V_WORKING == 0 {
            return Err(VmGallocError::MissingWorking { type_flags });
        }
        if !type_flags_ok(type_flags) {
            return Err(VmGallocError::UnknownTypeFlags { type_flags });
        }
        // Any positive size rounds without overflow; one too large for the
        // range is ENOSPC below, never EINVAL.
        let bytes = round_to_page(size).ok_or(VmGallocError::BadSize { size })?;
        let segments = bytes.div_ceil(SEGSIZE);
        let base = free_run(
            &self.vm,
            Space::Kernel,
            self.config.galloc_esids(),
            segments,
        )
        .ok_or(VmGallocError::RangeExhausted { segments })?;
        let prot = page_prot(type_flags);
        let mut sids = Vec::new();
        let mut left = bytes;
        while left > 0 {
            let this = left.min(SEGSIZE);
            match self.vm.create_segment((this / PAGESIZE) as u32, prot, true) {
                Ok(sid) => sids.push(sid),
                Err(e) => {
                    self.delete_logged(&sids);
                    return Err(VmGallocError::NoMemory(e.shortage()));
                }
            }
            left -= this;
        }
        // The kernel's mapping is a supervisor-only view: PP 00 whatever
        // the pages have, so with Ks = 0 the kernel reads and writes and
        // with Kp = 1 problem state gets nothing (ISA Book III §5.7.13.1),
        // even for V_UREAD pages (PP 01), which only a vm_guatt view
        // exposes.
        let how = MappingInfo {
            // Each part's own SID replaces it.
            sid: sids[0],
            key: SegKey::KERNEL,
            no_exec: prot.no_exec,
            window: None,
            view_prot: ViewProt::SupervisorOnly,
            fork: ForkAction::Share,
        };
        let count = sids.len() as u64;
        let part = |i: u64| (sids[i as usize], None);
        if let Err(e) = Self::map_run(&mut self.vm, Space::Kernel, base, count, part, &how) {
            self.delete_logged(&sids);
            return Err(VmGallocError::NoMemory(e.shortage()));
        }
        let start = base << SEGSHIFT;
        self.galloc_sids.extend(sids.iter().copied());
        // The range was free, so no allocation starts at `start`.
        let at = self.allocations.partition_point(|a| a.start < start);
        self.allocations.insert(
            at,
            Allocation {
                start,
                bytes,
                sids,
                type_flags,
            },
        );
        Ok(start)
    }

    pub(super) fn delete_logged(&mut self, sids: &[Sid]) {
        for &s in sids {
            if let Err(e) = self.vm.delete_segment(s) {
                log::error!("aix: delete of SID {:#x} failed: {e:?}", s.as_u64());
            }
        }
    }

    /// `vm_gfree`: frees the allocation that starts at `eaddr` and was
    /// made with a size rounding to the same number of pages. Every
    /// process's `vm_guatt` attachment of it and every `vm_att` of its
    /// segments is taken down first; then its segments and frames go.
    ///
    /// Environment: process (and kernel process) only.
    ///
    /// # Errors
    /// [`VmGfreeError::WrongEnvironment`] in an interrupt handler;
    /// [`VmGfreeError::NoSuchAllocation`] unless (eaddr, size) is exactly
    /// one allocation (no partial free).
    pub fn vm_gfree(&mut self, eaddr: u64, size: vmsize_t) -> Result<(), VmGfreeError> {
        if self.in_interrupt("vm_gfree") {
            return Err(VmGfreeError::WrongEnvironment);
        }
        let bad = VmGfreeError::NoSuchAllocation { eaddr, size };
        let at = allocation_at(&self.allocations, eaddr).ok_or(bad)?;
        if round_to_page(size) != Some(self.allocations[at].bytes) {
            return Err(bad);
        }
        let a = self.allocations.remove(at);
        // Revoke user attachments.
        let spaces: Vec<Space> = self.contexts.keys().copied().collect();
        for space in spaces {
            let Some(c) = self.contexts.get_mut(&space) else {
                continue;
            };
            let (gone, kept): (Vec<Attachment>, Vec<Attachment>) =
                c.attachments.drain(..).partition(|t| t.allocation == eaddr);
            c.attachments = kept;
            for t in gone {
                for e in t.esids {
                    self.unmap_logged(space, e);
                }
            }
            self.refresh_adspace(space);
        }
        for &sid in &a.sids {
            for (space, e) in self.mappings_of(sid) {
                self.unmap_logged(space, e);
                self.vm_att.remove(&e);
            }
        }
        let base = a.start >> SEGSHIFT;
        for i in 0..a.sids.len() as u64 {
            self.unmap_logged(Space::Kernel, base + i);
        }
        self.delete_logged(&a.sids);
        for sid in &a.sids {
            self.galloc_sids.remove(sid);
        }
        Ok(())
    }

    /// `vm_guatt`: attaches [kaddr, kaddr + size) of one `vm_galloc`
    /// allocation to the current process and returns the user address.
    ///
    /// The region goes to the lowest free run of user segments (the shmat
    /// area of a 64-bit process, registers 3..13/15 of a 32-bit one), one
    /// per allocation segment it touches, keeping the offset within the
    /// segment. Only the pages of [kaddr, kaddr + size) become reachable
    /// (stricter than AIX): where the region covers only some pages of a
    /// segment, through a view with a VSID of its own, so no translation
    /// made for another mapping reaches the others; where it covers all of
    /// them, through the segment itself, which no mapping but another
    /// process's whole attachment uses (the kernel reaches `vm_galloc`
    /// memory through a view of its own). `VM_PRIV` gives read-write; `VM_UNPRIV` gives
    /// read-only on `V_UREAD` memory and nothing otherwise. The attachment
    /// is not inherited across fork.
    ///
    /// The C entry also refuses a non-NULL `*uaddr`
    /// ([`VmGuattError::UaddrNotNull`]).
    ///
    /// Environment: process only (a kernel process has no user space).
    ///
    /// # Errors
    /// `EINVAL`: [`VmGuattError::WrongEnvironment`],
    /// [`VmGuattError::NoUserAddressSpace`], [`VmGuattError::BadFlags`]
    /// (not `VU_ANYWHERE`), [`VmGuattError::BadKey`],
    /// [`VmGuattError::BadSize`] (`size <= 0`),
    /// [`VmGuattError::NotInAllocation`]. `ENOMEM`:
    /// [`VmGuattError::NoMemory`] when no free run of user segments is
    /// left or the core cannot map.
    pub fn vm_guatt(
        &mut self,
        kaddr: u64,
        size: vmsize_t,
        key: vmkey_t,
        flags: c_long,
    ) -> Result<u64, VmGuattError> {
        let (space, c) = match Self::process_context_in(&self.vm, &mut self.contexts, "vm_guatt") {
            Err(true) => return Err(VmGuattError::WrongEnvironment),
            Err(false) | Ok((Space::Kernel, _)) => return Err(VmGuattError::NoUserAddressSpace),
            Ok(x) => x,
        };
        if flags != VU_ANYWHERE {
            return Err(VmGuattError::BadFlags { flags });
        }
        let key = VmKey::from_raw(key).ok_or(VmGuattError::BadKey { key })?;
        if size <= 0 {
            return Err(VmGuattError::BadSize { size });
        }
        let a = allocation_containing(&self.allocations, kaddr, size)
            .ok_or(VmGuattError::NotInAllocation { kaddr, size })?;
        // Offsets from the allocation's start: it may end at the top of
        // the address space, where kaddr + size would wrap.
        let off = kaddr - a.start;
        let off_end = off + size as u64;
        let first = off >> SEGSHIFT;
        let count = ((off_end - 1) >> SEGSHIFT) - first + 1;
        // Part i: the allocation's segment first + i, windowed to the
        // pages of [off, off_end) in it. A window of all the segment's
        // pages is no window: the segment is mapped itself, and the core
        // makes no view (no SID, no segment record) for it.
        let part = |i: u64| {
            let seg = first + i;
            let seg_off = seg << SEGSHIFT;
            let lo = off.max(seg_off) - seg_off;
            let hi = off_end.min(seg_off + SEGSIZE) - seg_off;
            let window = (lo / PAGESIZE) as u32..hi.div_ceil(PAGESIZE) as u32;
            let seg_pages = (a.bytes - seg_off).min(SEGSIZE).div_ceil(PAGESIZE) as u32;
            let whole = window.start == 0 && window.end == seg_pages;
            (a.sids[seg as usize], (!whole).then_some(window))
        };
        let no_exec = a.type_flags & V_NOEXEC != 0;
        let allocation = a.start;
        let base = Self::place_user_in(&self.vm, space, c.model, count)
            .ok_or(VmGuattError::NoMemory(Shortage::Regions))?;
        let how = MappingInfo {
            // Each part's own SID replaces it.
            sid: a.sids[0],
            key: seg_key(key),
            no_exec,
            window: None,
            view_prot: ViewProt::Segment,
            fork: ForkAction::Drop,
        };
        Self::map_run(&mut self.vm, space, base, count, part, &how)
            .map_err(|e| VmGuattError::NoMemory(e.shortage()))?;
        let uaddr = (base << SEGSHIFT) | (kaddr & SEGOFFSET);
        c.attachments.push(Attachment {
            allocation,
            kaddr,
            uaddr,
            size,
            esids: base..base + count,
        });
        self.refresh_adspace_for(space, base..base + count);
        Ok(uaddr)
    }

    /// `vm_gudet`: takes down the current process's attachment (kaddr,
    /// uaddr, size) made by `vm_guatt`; afterwards `uaddr` faults.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`VmGudetError::WrongEnvironment`],
    /// [`VmGudetError::BadFlags`] (not `VU_ANYWHERE`),
    /// [`VmGudetError::NotAllocated`] when [kaddr, kaddr + size) is not in
    /// a live allocation (also after `vm_gfree`),
    /// [`VmGudetError::NoSuchAttachment`] when the process has no such
    /// attachment.
    pub fn vm_gudet(
        &mut self,
        kaddr: u64,
        uaddr: u64,
        size: vmsize_t,
        flags: c_long,
    ) -> Result<(), VmGudetError> {
        let no_such = VmGudetError::NoSuchAttachment { kaddr, uaddr, size };
        let (space, c) = match Self::process_context_in(&self.vm, &mut self.contexts, "vm_gudet") {
            Err(true) => return Err(VmGudetError::WrongEnvironment),
            Err(false) => return Err(no_such),
            Ok(x) => x,
        };
        if flags != VU_ANYWHERE {
            return Err(VmGudetError::BadFlags { flags });
        }
        if allocation_containing(&self.allocations, kaddr, size).is_none() {
            return Err(VmGudetError::NotAllocated { kaddr, size });
        }
        let i = c
            .attachments
            .iter()
            .position(|t| t.kaddr == kaddr && t.uaddr == uaddr && t.size == size)
            .ok_or(no_such)?;
        let t = c.attachments.remove(i);
        for e in t.esids.clone() {
            self.unmap_logged(space, e);
        }
        self.refresh_adspace_for(space, t.esids);
        Ok(())
    }
}
