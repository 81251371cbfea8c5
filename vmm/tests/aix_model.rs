//! The AIX services suite on the reference core ([`vmm::aix::model::ModelVm`]).

mod aix_common;

use aix_common::Harness;
use vmm::aix::model::ModelVm;
use vmm::aix::{Aix, AixConfig, AixConfigError, MappingInfo, SegmentInfo, Space};
use vmm::platform::{Environment, Privilege};

struct ModelHarness {
    aix: Aix<ModelVm>,
}

impl Harness for ModelHarness {
    type Vm = ModelVm;
    type Snapshot = (
        Vec<(vmm::sid::Sid, SegmentInfo)>,
        Vec<(Space, vmm::arch_ppc64::addr::Esid, MappingInfo)>,
    );

    fn try_with_config(config: AixConfig) -> Result<Self, AixConfigError> {
        Ok(ModelHarness {
            aix: Aix::with_config(ModelVm::new(), config)?,
        })
    }
    fn aix(&mut self) -> &mut Aix<ModelVm> {
        &mut self.aix
    }
    fn aix_ref(&self) -> &Aix<ModelVm> {
        &self.aix
    }
    fn set_env(&mut self, env: Environment) {
        let vm = self.aix.vm_mut();
        vm.environment = env;
        match env {
            Environment::Process(p) => vm.active = Space::Process(p),
            Environment::KernelProcess => vm.active = Space::Kernel,
            Environment::Interrupt => {}
        }
    }
    fn load(&mut self, ea: u64, pr: Privilege) -> Result<u8, String> {
        let vm = self.aix.vm();
        vm.load(vm.active, ea, pr).map_err(|f| format!("{f:?}"))
    }
    fn store(&mut self, ea: u64, pr: Privilege, v: u8) -> Result<(), String> {
        let vm = self.aix.vm_mut();
        let space = vm.active;
        vm.store(space, ea, pr, v).map_err(|f| format!("{f:?}"))
    }
    fn core_snapshot(&self) -> Self::Snapshot {
        (self.aix.vm().all_segments(), self.aix.vm().all_mappings())
    }
    fn limit_sids(&mut self, more: u64) -> bool {
        self.aix.vm_mut().limit_sids(more);
        true
    }
    fn fail_map_after(&mut self, n: u32) -> bool {
        self.aix.vm_mut().fail_map_after = Some(n);
        true
    }
}

aix_suite!(ModelHarness);
