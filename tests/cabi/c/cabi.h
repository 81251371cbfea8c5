/*
 * cabi.h: the host harness around the AIX services (crate vmm-cabi,
 * library libvmm_cabi.a). It stands in for the rest of a kernel so a C or
 * C++ program can run a scenario through the services' C functions
 * (sys/vmuser.h, sys/adspace.h, sys/seg.h) on an emulated MMU.
 *
 * Build and link (see README.md, "Driving the services from C"):
 *   cargo build -p vmm-cabi --lib        # target/debug/libvmm_cabi.a
 *   cc -std=c11 -I vmm/include -I tests/cabi/c prog.c \
 *      target/debug/libvmm_cabi.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
 *
 * Life cycle:
 *   cabi_set_log(cb, CABI_LOG_WARN);  optional: log records to cb, not stderr
 *   cabi_init();                      machine + services; process 1 runs
 *   ... vm_galloc(), as_att64(), cabi_load(), cabi_set_env() ...
 *   cabi_reset();                     free it all; cabi_init() may run again
 *
 * Threads: the emulated machine belongs to the thread that called
 * cabi_init. From any other thread, every cabi_* call answers
 * CABI_WRONG_THREAD and every service its error value (EINVAL, NULL,
 * INVLSID, or 0 with vmm_errno() EINVAL), and a log record says why.
 *
 * Return codes: 0 (CABI_OK) or a negative CABI_* value below; cabi_load
 * returns the byte (0..255) on success.
 */
#ifndef VMM_CABI_H
#define VMM_CABI_H

#ifdef __cplusplus
extern "C" {
#endif

#define CABI_OK 0
/* The call failed: a bad argument, the services refused it, or it was
 * made from inside the log callback. */
#define CABI_FAILED (-1)
/* cabi_load / cabi_store: the access faulted (the VMM did not resolve the
 * storage interrupt: nothing mapped, or the key/protection forbids it). */
#define CABI_FAULT (-1)
/* cabi_init has not run, or cabi_reset undid it. */
#define CABI_NOT_INIT (-2)
/* Called from a thread other than the one that called cabi_init. */
#define CABI_WRONG_THREAD (-3)
/* cabi_init on the owner thread while initialised: cabi_reset first. */
#define CABI_ALREADY (-4)

/* Build the emulated machine, the VMM and the services, install them and
 * make process 1 (64-bit) run; the calling thread becomes the owner. Also
 * starts delivering log records (to stderr unless cabi_set_log chose a
 * callback). CABI_OK, CABI_ALREADY (this thread initialised it already),
 * CABI_WRONG_THREAD (another thread did), CABI_FAILED. */
int cabi_init(void);

/* Uninstall and free the services and the machine (every address, handle
 * and getadsp() pointer of the old machine becomes invalid); the services
 * answer their error values until the next cabi_init, which may then run
 * on any thread. CABI_OK, CABI_NOT_INIT, CABI_WRONG_THREAD. */
int cabi_reset(void);

/* What runs: kind 0 = process p (its address space becomes current),
 * 1 = a kernel process, 2 = an interrupt handler (the address space
 * stays). CABI_OK, CABI_FAILED (bad kind or unknown process),
 * CABI_NOT_INIT, CABI_WRONG_THREAD. */
int cabi_set_env(int kind, int p);

/* Create process p with a 64- or 32-bit (bits = 64 or 32) address space.
 * CABI_OK, CABI_FAILED, CABI_NOT_INIT, CABI_WRONG_THREAD. */
int cabi_create_process(int p, int bits);

/* Fork hook (child becomes a copy of parent) and exit hook. CABI_OK,
 * CABI_FAILED, CABI_NOT_INIT, CABI_WRONG_THREAD. */
int cabi_fork(int parent, int child);
int cabi_exit(int p);

/* Load / store one byte through the emulated MMU in the current address
 * space, in problem (user) state if problem != 0, else supervisor state.
 * cabi_load: the byte (0..255); cabi_store: CABI_OK. Either: CABI_FAULT,
 * CABI_NOT_INIT, CABI_WRONG_THREAD. */
int cabi_load(unsigned long ea, int problem);
int cabi_store(unsigned long ea, int problem, int value);

/* The VMM's HPT, SLB and tables agree. CABI_OK, CABI_FAILED,
 * CABI_NOT_INIT, CABI_WRONG_THREAD. */
int cabi_check(void);

/* Log levels (those of the Rust log crate). */
#define CABI_LOG_OFF 0
#define CABI_LOG_ERROR 1 /* e.g. vm_att with no free region, a bad vm_det */
#define CABI_LOG_WARN 2  /* refusals: wrong environment, wrong thread, ... */
#define CABI_LOG_INFO 3
#define CABI_LOG_DEBUG 4
#define CABI_LOG_TRACE 5

/* Receives one log record: its level and its text (NUL-terminated, valid
 * during the call only). Called on the thread that logs, possibly while a
 * service is in progress: it must not call cabi_* functions (refused with
 * CABI_FAILED) or the services (they may be refused as busy). */
typedef void (*cabi_log_fn)(int level, const char *message);

/* Send the library's records up to max_level (CABI_LOG_OFF..TRACE; the
 * default is CABI_LOG_WARN) to callback, or to stderr ("vmm WARN: ...")
 * when callback is NULL. Records are delivered once cabi_set_log or
 * cabi_init has run. Any thread may call it. CABI_OK, or CABI_FAILED for
 * a bad level or when another Rust logger owns the process. */
int cabi_set_log(cabi_log_fn callback, int max_level);

#ifdef __cplusplus
}
#endif

#endif /* VMM_CABI_H */
