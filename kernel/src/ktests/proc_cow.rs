//! Fork with copy-on-write on the real MMU: parent and child share their
//! private pages until one of them stores, whether the store comes from
//! problem state, from the kernel through the process's own mapping, or
//! from the kernel through a `vm_att` view.

use alloc::vec;
use alloc::vec::Vec;

use vmm::aix::Space;
use vmm::platform::ProcessId;

use crate::mm;
use crate::proc::{self, syscall as sys, Exit};
use crate::user::{self, v, Operand, Script};

const PAGE: u64 = 4096;

fn lit(x: u64) -> Operand {
    x.into()
}

fn cow_breaks() -> u64 {
    mm::with_vmm(|v| v.counters().cow_breaks)
}

/// The frame behind `ea` in process `pid`'s space, if resident.
fn frame_of(pid: ProcessId, ea: u64) -> Option<u64> {
    mm::with_aix(|aix| {
        let space = aix.vm().space_id(Space::Process(pid))?;
        let vmm = aix.vm().vmm();
        let m = vmm
            .space(space)
            .ok()?
            .get(arch_ppc64::addr::Esid::new(ea >> 28))?;
        let page = ((ea >> 12) & 0xffff) as u32;
        vmm.page_frame(m.handle.sid(), page)
            .ok()
            .flatten()
            .map(|f| f.as_u64())
    })
}

/// Makes `pid`'s address space the current one (as `spawn` does to load
/// a process).
fn enter(pid: ProcessId) {
    mm::with_aix(|aix| aix.vm_mut().switch_to(Space::Process(pid))).expect("switch to the process");
}

kernel_test! {
    fn fork_then_both_sides_store_and_read_back_their_own_data() {
        // Two scratch pages written before the fork. The child reads both
        // (the parent's data, no copy), stores to the first; the parent,
        // after the child ended, stores to the second (the last sharer:
        // no copy) and reads both back.
        let (a, b) = (user::SCRATCH_BASE, user::SCRATCH_BASE + PAGE);
        let mut s = Script::new();
        s.store64(a, 0xa0u64).store64(b, 0xb0u64).fork();
        let fork_at = s.here();
        s.branch_ne(0u64, 0);
        s.load64(a).report().load64(b).report().store64(a, 0xa1u64).load64(a).report().exit(0u64);
        let parent = s.here();
        s.patch_target(fork_at, parent);
        s.wait().store64(b, 0xb2u64).load64(a).report().load64(b).report().exit(0u64);
        let before = cow_breaks();
        let (pids, r) = proc::run_scripts(&[&s]);
        let p = r.of(pids[0]);
        assert_eq!(p.exit, Exit::Status(0));
        let kids = r.children_of(pids[0]);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].exit, Exit::Status(0));
        assert_eq!(kids[0].reports, vec![0xa0, 0xb0, 0xa1], "the child sees the parent's data, then its own");
        assert_eq!(p.reports, vec![0xa0, 0xb2], "the parent keeps its own");
        // At least the child's store broke a sharing, and the parent's.
        assert!(cow_breaks() - before >= 2, "breaks {}", cow_breaks() - before);
    }

    fn a_fork_chain_of_three_each_keep_their_own_data() {
        // P stores 1 and forks C; C forks G; each stores its own value
        // after its child exists, then all read back.
        let x = user::SCRATCH_BASE;
        let mut s = Script::new();
        s.store64(x, 1u64).fork();
        let p_fork = s.here();
        s.branch_ne(0u64, 0);
        // C: sees 1, forks G.
        s.load64(x).report().fork();
        let c_fork = s.here();
        s.branch_ne(0u64, 0);
        // G: sees 1, stores 3.
        s.load64(x).report().store64(x, 3u64).load64(x).report().exit(3u64);
        let c_parent = s.here();
        s.patch_target(c_fork, c_parent);
        s.store64(x, 2u64).wait().load64(x).report().exit(2u64);
        let p_parent = s.here();
        s.patch_target(p_fork, p_parent);
        s.wait().load64(x).report().exit(1u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let p = r.of(pids[0]);
        assert_eq!(p.exit, Exit::Status(1));
        assert_eq!(p.reports, vec![1], "its own 1");
        let c = r.children_of(pids[0]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].exit, Exit::Status(2));
        assert_eq!(c[0].reports, vec![1, 2], "sees 1, then its own 2");
        let g = r.children_of(c[0].pid);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].exit, Exit::Status(3));
        assert_eq!(g[0].reports, vec![1, 3], "sees 1, then its own 3");
    }

    fn the_kernel_stores_into_a_shared_page_through_the_process_mapping() {
        // Copy-out: a supervisor store through the child's own mapping
        // (Ks = 0, the page read-only while shared) faults with a
        // protection cause, which the VMM resolves by copying.
        let x = user::SCRATCH_BASE;
        let mut s = Script::new();
        s.load64(x).exit(0u64);
        let parent = proc::spawn(&s).expect("spawn");
        let child = proc::new_pid();
        let prev = mm::with_vmm(|v| v.current());
        enter(parent);
        // SAFETY: the parent's space is current; its data segment is
        // read-write for Ks = 0; the fault handler makes the page.
        unsafe { (x as *mut u64).write_volatile(0x1111) };
        mm::with_aix(|aix| aix.fork(parent, child)).expect("fork");
        let shared = frame_of(parent, x).expect("resident");
        assert_eq!(frame_of(child, x), Some(shared), "shared until a store");
        let before = cow_breaks();
        enter(child);
        // SAFETY: as above, in the child's space: a store to the shared
        // page, then a load of the child's own.
        let back = unsafe {
            (x as *mut u64).write_volatile(0x2222);
            (x as *const u64).read_volatile()
        };
        enter(parent);
        // SAFETY: the parent's page, still the shared frame.
        let parents = unsafe { (x as *const u64).read_volatile() };
        mm::with_vmm(|v| v.switch_to(prev)).expect("switch back");
        assert_eq!((back, parents), (0x2222, 0x1111));
        assert_eq!(cow_breaks() - before, 1);
        assert_ne!(frame_of(child, x), Some(shared), "the child got a copy");
        assert_eq!(frame_of(parent, x), Some(shared));
        mm::with_aix(|aix| aix.exit(child)).expect("exit child");
        // The parent runs its script (and ends) as usual, seeing its data.
        let r = proc::run();
        let o = r.of(parent);
        assert_eq!(o.exit, Exit::Status(0));
        assert_eq!(o.results, vec![0x1111]);
    }

    fn vm_att_of_a_shared_segment_sees_and_breaks_its_own_side() {
        // The child writes its own data segment through the kernel's
        // vm_att view (as_getsrval64 gives the handle): the kernel's store
        // through the view breaks the child's sharing; the parent keeps
        // its data and the child sees the kernel's value.
        let x = user::SCRATCH_BASE;
        let off = x - user::DATA_BASE;
        let mut s = Script::new();
        s.store64(x, 0x77u64).fork();
        let fork_at = s.here();
        s.branch_ne(0u64, 0);
        s.syscall(sys::AS_GETSRVAL64, &[lit(user::DATA_BASE)])
            .save(1)
            .syscall(sys::VM_ATT_RW, &[v(1, 0), lit(off), lit(0x88)])
            .report()
            .load64(x)
            .report()
            .exit(0u64);
        let parent = s.here();
        s.patch_target(fork_at, parent);
        s.wait().load64(x).report().exit(0u64);
        let before = cow_breaks();
        let (pids, r) = proc::run_scripts(&[&s]);
        assert!(cow_breaks() > before, "the kernel's store broke the sharing");
        let p = r.of(pids[0]);
        let kids: Vec<_> = r.children_of(pids[0]);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].exit, Exit::Status(0));
        assert_eq!(kids[0].reports, vec![0x88, 0x88], "the kernel wrote the child's page");
        assert_eq!(p.reports, vec![0x77], "the parent's page is its own");
    }
}
