//! An entry of the C interface called while the services' lock is held on
//! the same thread — what an interrupt handler sees when it interrupted a
//! service call — answers its error value promptly instead of spinning
//! for ever. Its own test binary: before the fix the calling thread would
//! hang holding the lock.

use std::ptr;
use std::sync::mpsc;
use std::time::Duration;

use vmm::aix::cabi::{self, with_services};
use vmm::aix::model::ModelVm;
use vmm::aix::{adspace_t, Aix, INVLSID, V_WORKING};
use vmm::platform::Environment;

const EINVAL: i32 = 22;

#[test]
fn entries_refuse_instead_of_deadlocking_when_the_lock_is_held() {
    let mut vm = ModelVm::new();
    vm.environment = Environment::Interrupt;
    let aix: &'static mut Aix<ModelVm> = Box::leak(Box::new(Aix::new(vm)));
    cabi::install_send(aix);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Hold the lock as an interrupted service call would, and call
        // every entry from "inside" it.
        let r = with_services(|_| {
            let mut addr = 0;
            let mut vmid = 0;
            let adsp = 0x1000 as *mut adspace_t;
            // SAFETY: the out-pointers are valid locals.
            let galloc = unsafe { cabi::vm_galloc(V_WORKING, 4096, &mut addr) };
            // SAFETY: as above.
            let create = unsafe { cabi::vms_create(&mut vmid, V_WORKING, 0, 4096, 0, 0) };
            let mut uaddr: *mut core::ffi::c_void = ptr::null_mut();
            // SAFETY: as above.
            let guatt = unsafe { cabi::vm_guatt(ptr::null_mut(), 4096, 0, 0, &mut uaddr) };
            vec![
                (galloc, EINVAL),
                (create, EINVAL),
                (guatt, EINVAL),
                (cabi::vm_gfree(addr, 4096), EINVAL),
                (cabi::vms_delete(1), EINVAL),
                (cabi::as_det(adsp, ptr::null_mut()), EINVAL),
                (cabi::as_det64(0), EINVAL),
                (cabi::as_seth64(0, 0), EINVAL),
                (cabi::as_puth64(0, 0), EINVAL),
                (cabi::getadsp() as usize as i32, 0),
                (cabi::as_att(adsp, 0, ptr::null_mut()) as usize as i32, 0),
                (cabi::vm_att(0, ptr::null_mut()) as usize as i32, 0),
                (cabi::as_att64(0, 0) as i32, 0),
                (cabi::vmm_errno(), EINVAL),
                (
                    i32::from(cabi::as_geth(adsp, ptr::null_mut()) == INVLSID),
                    1,
                ),
                (i32::from(cabi::as_geth64(0) == INVLSID), 1),
                (i32::from(cabi::as_getsrval64(0) == INVLSID), 1),
                (
                    i32::from(cabi::as_getsrval(adsp, ptr::null_mut()) == INVLSID),
                    1,
                ),
            ]
        });
        let _ = tx.send(r);
    });
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("an entry spun on the held lock (deadlock)")
        .expect("services installed");
    for (i, (value, want)) in got.iter().enumerate() {
        assert_eq!(value, want, "entry #{i}");
    }
}
