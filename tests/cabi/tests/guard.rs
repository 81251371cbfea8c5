//! `vmm::aix::cabi::install_guarded`: while the guard says no, every C
//! entry answers its error value without reaching the services; once it
//! says yes, the same calls are served. Its own test binary, because the
//! services are one global object.

use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use vmm::aix::cabi::{self, Guard};
use vmm::aix::model::ModelVm;
use vmm::aix::{Aix, INVLSID, V_WORKING};

const EINVAL: i32 = 22;

static ALLOWED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_refusing_guard_keeps_every_entry_off_the_services() {
    let aix: &'static mut Aix<ModelVm> = Box::leak(Box::new(Aix::new(ModelVm::new())));
    let guard = Guard {
        allowed: || ALLOWED.load(Ordering::SeqCst),
        refusal: "not allowed by the test",
    };
    // SAFETY: `Aix<ModelVm>` is `Send`; the guard is only a filter here.
    unsafe { cabi::install_guarded(aix, guard) };

    let mut addr = 0;
    let mut vmid = -1;
    // SAFETY: the out-pointers are valid locals.
    let galloc = unsafe { cabi::vm_galloc(V_WORKING, 4096, &mut addr) };
    assert_eq!(galloc, EINVAL);
    assert_eq!(addr, 0);
    // SAFETY: as above.
    let create = unsafe { cabi::vms_create(&mut vmid, V_WORKING, 0, 4096, 0, 0) };
    assert_eq!(create, EINVAL);
    assert_eq!(vmid, -1);
    assert!(cabi::getadsp().is_null());
    assert!(cabi::vm_att(0, ptr::null_mut()).is_null());
    assert_eq!(cabi::as_att64(0, 0), 0);
    assert_eq!(cabi::vmm_errno(), EINVAL);
    assert_eq!(cabi::as_geth64(0), INVLSID);
    assert_eq!(cabi::as_getsrval64(0), INVLSID);
    // The embedder's own access does not consult the guard.
    assert_eq!(cabi::with_services(|_| ()), Some(()));

    ALLOWED.store(true, Ordering::SeqCst);
    // SAFETY: as above.
    let galloc = unsafe { cabi::vm_galloc(V_WORKING, 4096, &mut addr) };
    assert_eq!(galloc, 0);
    // The first allocation's address: the refused call allocated nothing.
    assert_eq!(addr, 0xF100_0000_0000_0000);
    // SAFETY: as above.
    let create = unsafe { cabi::vms_create(&mut vmid, V_WORKING, 0, 4096, 0, 0) };
    assert_eq!(create, 0);
    assert!(vmid > 0);
    assert!(!cabi::getadsp().is_null());
    assert_eq!(cabi::vms_delete(vmid), 0);
    assert_eq!(cabi::vm_gfree(addr, 4096), 0);
}
