//! RTAS calls through QEMU's `KVMPPC_H_RTAS` hcall (PAPR 7.2: argument
//! block of big-endian u32 cells `token, nargs, nret, args.., rets..`).
//!
//! The kernel does not instantiate RTAS: the hcall works under both VOF and
//! SLOF without the firmware's RTAS blob. Tokens come from `/rtas`.

use crate::bootinfo::{self, virt_to_real};
use arch_ppc64::instructions::hcall::{hcall, opcode, PaprError};

/// An RTAS argument block with room for a few arguments and returns.
#[repr(C, align(8))]
struct RtasArgs {
    token: u32,
    nargs: u32,
    nret: u32,
    cells: [u32; 8],
}

/// Why an RTAS call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtasError {
    /// The device tree had no token for the service.
    NoToken,
    /// The hcall itself failed.
    Hcall(PaprError),
    /// RTAS returned a non-zero status in `rets[0]`.
    Status(i32),
}

/// Calls RTAS service `token` with `args` and `nret` return cells;
/// returns `rets[0]` (0, or the error status).
pub fn call(token: u32, args: &[u32], nret: u32) -> Result<i32, RtasError> {
    let mut rets = [0u32; 1];
    call_with_returns(token, args, nret, &mut rets)
}

/// [`call`], also copying the return cells after the status (`rets[1..]`)
/// into `outputs` (as many as fit).
///
/// # Panics
///
/// If the arguments and returns do not fit the 8-cell block.
pub fn call_with_returns(
    token: u32,
    args: &[u32],
    nret: u32,
    outputs: &mut [u32],
) -> Result<i32, RtasError> {
    assert!(args.len() + nret as usize <= 8, "RTAS block of 8 cells");
    let mut block = RtasArgs {
        token,
        nargs: args.len() as u32,
        nret,
        cells: [0; 8],
    };
    block.cells[..args.len()].copy_from_slice(args);
    let addr = virt_to_real(&raw mut block as u64);
    // SAFETY: KVMPPC_H_RTAS reads the block and writes its return cells;
    // the block lives on this stack frame for the whole call.
    unsafe { hcall(opcode::KVMPPC_H_RTAS, &[addr]) }.map_err(RtasError::Hcall)?;
    let ret = block.cells[args.len()] as i32;
    if ret != 0 {
        return Err(RtasError::Status(ret));
    }
    let more = &block.cells[args.len() + 1..args.len() + nret as usize];
    for (o, c) in outputs.iter_mut().zip(more) {
        *o = *c;
    }
    Ok(ret)
}

/// What `query-cpu-stopped-state` says of a processor thread (PAPR's
/// values 0, 1, 2; QEMU answers only 0 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuState {
    /// Stopped: `start-cpu` may start it.
    Stopped,
    /// A `stop-self` is in progress.
    Stopping,
    /// Not stopped: running.
    Running,
    /// Another value.
    Other(u32),
}

/// `query-cpu-stopped-state` of the thread with interrupt server `server`.
pub fn query_cpu_stopped_state(server: u32) -> Result<CpuState, RtasError> {
    let token = bootinfo::try_get()
        .and_then(|b| b.rtas.query_cpu_stopped_state)
        .ok_or(RtasError::NoToken)?;
    let mut state = [0u32; 1];
    call_with_returns(token, &[server], 2, &mut state)?;
    Ok(match state[0] {
        0 => CpuState::Stopped,
        1 => CpuState::Stopping,
        2 => CpuState::Running,
        other => CpuState::Other(other),
    })
}

/// `start-cpu`: starts the stopped thread `server` at real address
/// `entry` in real mode (MSR = SF | ME) with `r3` in r3.
pub fn start_cpu(server: u32, entry: u32, r3: u32) -> Result<(), RtasError> {
    let token = bootinfo::try_get()
        .and_then(|b| b.rtas.start_cpu)
        .ok_or(RtasError::NoToken)?;
    call(token, &[server, entry, r3], 1).map(|_| ())
}

/// Powers the machine off (`power-off`, two zero arguments as PAPR
/// requires); QEMU then exits with status 0.
pub fn power_off() -> Result<(), RtasError> {
    let token = bootinfo::try_get()
        .and_then(|b| b.rtas.power_off)
        .ok_or(RtasError::NoToken)?;
    call(token, &[0, 0], 1).map(|_| ())
}

/// Reports an OS failure (`ibm,os-term`) with `message`; with
/// `-action panic=exit-failure` QEMU prints it and exits with status 1.
pub fn os_term(message: &str) -> Result<(), RtasError> {
    let token = bootinfo::try_get()
        .and_then(|b| b.rtas.os_term)
        .ok_or(RtasError::NoToken)?;
    let mut buf = [0u8; 128];
    let len = message.len().min(buf.len() - 1);
    buf[..len].copy_from_slice(&message.as_bytes()[..len]);
    let addr = virt_to_real(buf.as_ptr() as u64) as u32;
    call(token, &[addr], 1).map(|_| ())
}

/// Ends the run: power-off on success, `ibm,os-term` with `message` on
/// failure. Spins if RTAS is unavailable (the host's timeout then ends the
/// run).
pub fn exit(success: bool, message: &str) -> ! {
    let result = if success {
        power_off()
    } else {
        os_term(message)
    };
    if let Err(e) = result {
        crate::console::print_fmt_unlocked(format_args!("RTAS exit failed: {e:?}\n"));
    }
    loop {
        core::hint::spin_loop();
    }
}
