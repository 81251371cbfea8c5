/*
 * vmm.h: the virtual memory manager as a C library (libvmm_c.a, crate
 * vmm-c).
 *
 * A kernel written in C hands the library its machine as a table of
 * callbacks (struct vmm_platform) and gets back the manager: processes,
 * the environment and address-space switch, a fault entry for the four
 * storage interrupts, and the 21 AIX memory services of
 * <sys/vmuser.h> and <sys/adspace.h>, which this header includes.
 *
 * Locking: the library keeps one instance under one lock. Every entry
 * tries that lock a bounded number of times and answers VMM_EBUSY (the
 * services: their AIX error value) instead of spinning for ever, so a
 * fault taken while the same processor is inside the library is refused,
 * not deadlocked. The callbacks are called with the lock held, from the
 * processor that made the call, and must not call back into the library.
 *
 * Compiles as C11 and C++17.
 */
#ifndef VMM_H
#define VMM_H

#include <stddef.h>
#include <stdint.h>

#include <sys/adspace.h> /* the AIX services; includes vmuser.h, seg.h */

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of the vmm_* calls (the AIX services keep AIX's). */
#define VMM_OK 0
#define VMM_EINVAL (-1)   /* a bad argument; nothing changed */
#define VMM_ENOMEM (-2)   /* frames, SIDs or bookkeeping ran out */
#define VMM_EBUSY (-3)    /* the library's lock stayed busy (re-entered?) */
#define VMM_ENOTINIT (-4) /* vmm_create has not succeeded */
#define VMM_EEXIST (-5)   /* vmm_create: already created; a pid in use */
#define VMM_ENOENT (-6)   /* no such process */
#define VMM_EPLATFORM (-7) /* the platform refused (HPT or SLB setup) */

/* PAPR hcall return codes the HPT callbacks answer. */
#define VMM_H_SUCCESS 0
#define VMM_H_PARAMETER (-4)
#define VMM_H_PTEG_FULL (-6)
#define VMM_H_NOT_FOUND (-7)

/* vmm_platform.hpt_remove: the condition, as H_REMOVE's flags. */
#define VMM_REMOVE_ABSOLUTE 0 /* remove whatever valid entry is there */
#define VMM_REMOVE_AVPN 1     /* only if (v & ~0x7f) == value */
#define VMM_REMOVE_ANDCOND 2  /* only if (v & value) == 0 */

/* Frame callbacks' return codes (besides 0). */
#define VMM_FRAME_MISALIGNED 1
#define VMM_FRAME_OUT_OF_RANGE 2
#define VMM_FRAME_NOT_ALLOCATED 3
#define VMM_FRAME_TOO_MANY_SHARERS 4

/* Log levels of vmm_platform.log. */
#define VMM_LOG_ERROR 1
#define VMM_LOG_WARN 2
#define VMM_LOG_INFO 3
#define VMM_LOG_DEBUG 4
#define VMM_LOG_TRACE 5

/*
 * The machine. Every callback gets `ctx` first. Physical addresses are
 * real addresses of 4 KiB frames.
 */
struct vmm_platform {
    void *ctx;

    /* Hashed page table, one of two ways:
     * - PAPR style (H_ENTER, H_REMOVE, H_PROTECT, H_READ): hpt_table NULL,
     *   hpt_ptegs PTEGs (a power of two) and the four hpt_* calls, which
     *   answer VMM_H_* codes and leave the table unchanged on failure;
     * - in memory (a kernel that owns the MMU): hpt_table points to
     *   hpt_ptegs * 128 bytes in the architected (big-endian) format,
     *   aligned to its size, the hpt_* calls are NULL, and tlb_invalidate
     *   (NULL for a table no MMU walks) is called after an entry was
     *   removed or changed, with its index and old contents, to flush the
     *   translations derived from it (tlbie). */
    uint64_t hpt_ptegs;
    void *hpt_table;
    void (*tlb_invalidate)(void *ctx, uint64_t ptex, uint64_t v, uint64_t r);
    /* H_ENTER into group `group`: the first free slot when slot < 0,
     * else exactly `slot` (H_EXACT). Stores the PTE index in *ptex. */
    int64_t (*hpt_insert)(void *ctx, uint64_t group, int slot, uint64_t v, uint64_t r,
                          uint64_t *ptex);
    /* H_REMOVE under condition `how` (VMM_REMOVE_*) with `value`; stores
     * the old entry (with its final R and C) in *v, *r. */
    int64_t (*hpt_remove)(void *ctx, uint64_t ptex, int how, uint64_t value, uint64_t *v,
                          uint64_t *r);
    /* H_PROTECT with H_AVPN: new pp (PP0 || PP, 3 bits) and N, if the
     * entry is valid and (v & ~0x7f) == avpn; flushes the old translation. */
    int64_t (*hpt_protect)(void *ctx, uint64_t ptex, uint64_t avpn, unsigned pp, int no_exec);
    /* H_READ of one entry, valid or not. */
    int64_t (*hpt_read)(void *ctx, uint64_t ptex, uint64_t *v, uint64_t *r);

    /* SLB: entries the manager may use (it uses hardware indexes
     * slb_index_base .. slb_index_base + slb_entries - 1, so entries of
     * the kernel's own below the base stay untouched). */
    size_t slb_entries;
    size_t slb_index_base;
    /* slbmte of (esid_word, vsid_word) at hardware index `index`. */
    void (*slb_load)(void *ctx, size_t index, uint64_t esid_word, uint64_t vsid_word);
    /* slbmfee/slbmfev of hardware index `index`. */
    void (*slb_read)(void *ctx, size_t index, uint64_t *esid_word, uint64_t *vsid_word);
    /* slbie of the segment of `ea` (one_tb: a 1 TB segment). */
    void (*slb_invalidate)(void *ctx, uint64_t ea, int one_tb);
    /* Invalidate hardware entries `first` .. slb_index_base + slb_entries
     * - 1 (the manager's, past its bolted ones). */
    void (*slb_invalidate_from)(void *ctx, size_t first);

    /* 4 KiB frames, each with a count of sharers (fork shares pages
     * copy-on-write). frame_alloc: 0 and *pa, or nonzero when none is
     * left; the others: 0 or VMM_FRAME_*. frame_free drops one sharer and
     * frees the frame with the last. */
    int (*frame_alloc)(void *ctx, uint64_t *pa);
    int (*frame_free)(void *ctx, uint64_t pa);
    int (*frame_share)(void *ctx, uint64_t pa);
    uint32_t (*frame_sharers)(void *ctx, uint64_t pa);
    int (*frame_zero)(void *ctx, uint64_t pa);
    int (*frame_copy)(void *ctx, uint64_t dst, uint64_t src);
    uint64_t (*frame_free_count)(void *ctx);

    /* The memory the library's allocator uses for its tables (at least
     * 256 KiB; a few MiB for many processes and segments), given to it
     * for good by vmm_create. */
    void *heap;
    size_t heap_size;

    /* Log records (may be NULL): not NUL-terminated, `len` bytes. */
    void (*log)(void *ctx, int level, const char *msg, size_t len);
    /* Called when the library hits a bug it cannot continue from (may be
     * NULL: the library then spins). Must not return. */
    void (*abort)(void *ctx, const char *msg, size_t len);
};

/* Builds the manager over `platform` (copied) with `slb_bolted` SLB
 * entries kept for the manager's bolted kernel segments, and makes the
 * AIX services work on it. The kernel's address space is current and the
 * environment is "kernel process". Once per boot: VMM_EINVAL (a bad or
 * incomplete table: both HPT ways or neither, a heap below 256 KiB, ...)
 * changes nothing and may be retried; after the checks the heap belongs
 * to the library, and a failure building the manager (VMM_ENOMEM,
 * VMM_EPLATFORM) is final. */
int vmm_create(const struct vmm_platform *platform, size_t slb_bolted);

/* The address-space model of a process. */
#define VMM_MODEL_64 0
#define VMM_MODEL_32 1

/* Processes: an empty address space for `pid`; a copy of `parent`'s for
 * `child` (private segments shared copy-on-write); teardown. */
int vmm_process_create(uint32_t pid, int model);
int vmm_process_fork(uint32_t parent, uint32_t child);
int vmm_process_exit(uint32_t pid);

/* What runs now, as the AIX services see it. */
#define VMM_ENV_KERNEL_PROCESS 0
#define VMM_ENV_PROCESS 1 /* `pid` runs */
#define VMM_ENV_INTERRUPT 2
int vmm_set_environment(int env, uint32_t pid);

/* Makes `pid`'s address space (or the kernel's) the one user addresses
 * translate in: its SLB entries are loaded on demand from now on. */
int vmm_switch_to_process(uint32_t pid);
int vmm_switch_to_kernel(void);

/* Why a fault was not resolved (vmm_fault_report.reason). */
#define VMM_FAULT_NO_SEGMENT 1
#define VMM_FAULT_OUT_OF_RANGE 2
#define VMM_FAULT_PROTECTION 3
#define VMM_FAULT_NO_EXECUTE 4
#define VMM_FAULT_KEY 5
#define VMM_FAULT_NO_MEMORY 6
#define VMM_FAULT_HPT_FULL 7
#define VMM_FAULT_NOT_ALLOWED_HERE 8
#define VMM_FAULT_RETRIES_EXHAUSTED 9
#define VMM_FAULT_SLB 10
#define VMM_FAULT_FRAME 11
#define VMM_FAULT_HPT 12
#define VMM_FAULT_UNKNOWN_CAUSE 13

/* vmm_fault_report.access */
#define VMM_ACCESS_UNKNOWN 0
#define VMM_ACCESS_LOAD 1
#define VMM_ACCESS_STORE 2
#define VMM_ACCESS_FETCH 3

struct vmm_fault_report {
    uint64_t ea;
    int reason; /* VMM_FAULT_* */
    int access; /* VMM_ACCESS_* */
};

/* Results of vmm_fault. */
#define VMM_RESOLVED 0 /* translation fixed: return and re-execute */
#define VMM_FAULT 1    /* a real fault, described in *report */

/* The storage interrupts: vector 0x300 (DSI: ea = DAR, status = DSISR),
 * 0x380 (data segment: ea = DAR), 0x400 (ISI: ea = SRR0, status = SRR1),
 * 0x480 (instruction segment: ea = SRR0); `problem` = MSR[PR] of the
 * interrupted context. Answers VMM_RESOLVED, VMM_FAULT (with *report
 * filled, if report is not NULL) or a VMM_E* code (VMM_EINVAL for another
 * vector). */
int vmm_fault(uint64_t vector, uint64_t ea, uint64_t status, int problem,
              struct vmm_fault_report *report);

#ifdef __cplusplus
}
#endif

#endif /* VMM_H */
