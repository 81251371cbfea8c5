//! `vmm::aix::cabi::set_access`: with an embedder's access set, every C
//! entry reaches the services through it (the embedder's one lock), says
//! whether it is an interrupt-environment entry, and answers its error
//! value when the access refuses; the built-in object is no longer used.
//! Its own test binary, because the access is set once per process.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use vmm::aix::cabi::{self, Access, AixServices, Entry};
use vmm::aix::model::ModelVm;
use vmm::aix::{AddressModel, Aix, Space, INVLSID, VM_PRIV, V_WORKING};
use vmm::platform::{Environment, ProcessId};

const EINVAL: i32 = 22;

/// The embedder's instance, under its own (only) lock.
static AIX: Mutex<Option<Aix<ModelVm>>> = Mutex::new(None);

struct TestAccess {
    refuse: AtomicBool,
    process_calls: AtomicUsize,
    interrupt_calls: AtomicUsize,
}

impl Access for TestAccess {
    fn with_services(
        &self,
        entry: Entry,
        f: &mut dyn FnMut(&mut dyn AixServices),
    ) -> Result<(), &'static str> {
        match entry {
            Entry::Process => self.process_calls.fetch_add(1, Ordering::SeqCst),
            Entry::Interrupt => self.interrupt_calls.fetch_add(1, Ordering::SeqCst),
        };
        if self.refuse.load(Ordering::SeqCst) {
            return Err("refused by the test's access");
        }
        let mut g = AIX.lock().unwrap();
        f(g.as_mut().ok_or("no instance")?);
        Ok(())
    }
}

static ACCESS: TestAccess = TestAccess {
    refuse: AtomicBool::new(false),
    process_calls: AtomicUsize::new(0),
    interrupt_calls: AtomicUsize::new(0),
};

#[test]
fn c_entries_go_through_the_embedders_access() {
    let mut aix = Aix::new(ModelVm::new());
    let p = ProcessId(1);
    aix.create_process(p, AddressModel::Bits64).unwrap();
    aix.vm_mut().environment = Environment::Process(p);
    aix.vm_mut().active = Space::Process(p);
    *AIX.lock().unwrap() = Some(aix);
    assert!(cabi::set_access(&ACCESS).is_ok());
    assert!(cabi::set_access(&ACCESS).is_err(), "set once");

    // A built-in object installed now is not what the entries use.
    let other: &'static mut Aix<ModelVm> = Box::leak(Box::new(Aix::new(ModelVm::new())));
    cabi::install_send(other);

    let mut k = 0;
    // SAFETY: `k` is a valid local.
    assert_eq!(unsafe { cabi::vm_galloc(V_WORKING, 8192, &mut k) }, 0);
    assert_ne!(k, 0);
    assert_eq!(ACCESS.process_calls.load(Ordering::SeqCst), 1);
    let allocated = AIX.lock().unwrap().as_ref().unwrap().allocations().count();
    assert_eq!(allocated, 1, "the allocation is in the embedder's instance");
    assert!(
        cabi::with_services(|s| {
            s.as_any_mut()
                .downcast_mut::<Aix<ModelVm>>()
                .unwrap()
                .allocations()
                .count()
        }) == Some(0)
    );

    // vm_att is an interrupt-environment entry; vm_handle takes no lock.
    let h = cabi::vm_handle(3, VM_PRIV);
    assert_ne!(h, INVLSID);
    let before = ACCESS.interrupt_calls.load(Ordering::SeqCst);
    let _ = cabi::vm_att(h, ptr::null_mut());
    assert_eq!(ACCESS.interrupt_calls.load(Ordering::SeqCst), before + 1);
    assert_eq!(ACCESS.process_calls.load(Ordering::SeqCst), 1);

    // A refusing access: error values, nothing changed.
    ACCESS.refuse.store(true, Ordering::SeqCst);
    let bk = AIX.lock().unwrap().as_ref().unwrap().bookkeeping();
    assert_eq!(cabi::vm_gfree(k, 8192), EINVAL);
    let mut k2 = 0;
    // SAFETY: `k2` is a valid local.
    assert_eq!(unsafe { cabi::vm_galloc(V_WORKING, 4096, &mut k2) }, EINVAL);
    assert_eq!(k2, 0);
    assert!(cabi::getadsp().is_null());
    assert_eq!(cabi::as_geth64(0x0700_0000_0000_0000), INVLSID);
    assert_eq!(cabi::as_att64(h, 0), 0);
    assert_eq!(AIX.lock().unwrap().as_ref().unwrap().bookkeeping(), bk);

    ACCESS.refuse.store(false, Ordering::SeqCst);
    assert_eq!(cabi::vm_gfree(k, 8192), 0);
    assert_eq!(
        AIX.lock().unwrap().as_ref().unwrap().allocations().count(),
        0
    );
}
