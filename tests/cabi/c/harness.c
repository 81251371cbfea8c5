/*
 * The harness calls as a C user meets them: before cabi_init, a second
 * cabi_init, cabi_reset and a fresh machine, calls from another thread,
 * and where the library's log records go. Exits 0 only if all checks
 * pass; the test that runs it also reads its stderr.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sys/adspace.h>
#include <sys/seg.h>
#include "cabi.h"
#include "check.h"

#define GALLOC 0xF100000000000000UL
#define SUP 0

/* Every record the callback received. */
#define MAX_RECORDS 256
static struct {
    int level;
    char text[512];
} records[MAX_RECORDS];
static int nrecords;

/* When set, the callback tries a harness call from inside itself. */
static int reenter;
static int reenter_result = 12345;

static void collect(int level, const char *message)
{
    if (nrecords < MAX_RECORDS) {
        records[nrecords].level = level;
        snprintf(records[nrecords].text, sizeof records[nrecords].text, "%s", message);
        nrecords++;
    }
    if (reenter) {
        reenter = 0;
        reenter_result = cabi_load(GALLOC, SUP);
    }
}

/* A record at level, received since record number from, that contains a
 * and (unless NULL) b. */
static int logged(int from, int level, const char *a, const char *b)
{
    int i;

    for (i = from; i < nrecords; i++)
        if (records[i].level == level && strstr(records[i].text, a) &&
            (b == NULL || strstr(records[i].text, b)))
            return 1;
    return 0;
}

static void before_init(void)
{
    int mark = nrecords;
    ulong x = 0;

    CHECK(cabi_load(GALLOC, SUP) == CABI_NOT_INIT);
    CHECK(logged(mark, CABI_LOG_WARN, "cabi_load", "cabi_init first"));
    CHECK(cabi_store(GALLOC, SUP, 1) == CABI_NOT_INIT);
    CHECK(cabi_set_env(0, 1) == CABI_NOT_INIT);
    CHECK(cabi_create_process(2, 64) == CABI_NOT_INIT);
    CHECK(cabi_fork(1, 2) == CABI_NOT_INIT);
    CHECK(cabi_exit(1) == CABI_NOT_INIT);
    CHECK(cabi_check() == CABI_NOT_INIT);
    CHECK(cabi_reset() == CABI_NOT_INIT);
    mark = nrecords;
    CHECK(vm_galloc(V_WORKING, 4096, &x) == EINVAL);
    CHECK(x == 0);
    CHECK(logged(mark, CABI_LOG_WARN, "vm_galloc", "no AIX services installed"));
}

static void second_init(void)
{
    int mark = nrecords;
    ulong k = 0;

    CHECK(cabi_init() == CABI_OK);
    CHECK(cabi_init() == CABI_ALREADY);
    CHECK(logged(mark, CABI_LOG_WARN, "cabi_init", "cabi_reset"));
    /* The refused init left the machine as it was. */
    CHECK(vm_galloc(V_WORKING, 4096, &k) == 0);
    CHECK(k == GALLOC);
    CHECK(cabi_store(k, SUP, 0x42) == CABI_OK);
    CHECK(cabi_init() == CABI_ALREADY);
    CHECK(cabi_load(k, SUP) == 0x42);
}

/* What another thread got from each call. */
struct other {
    int load, store, init, reset, set_env, check;
    int galloc, gfree, errno_after_att64;
    ulong galloc_out;
    unsigned long long att64;
    int adsp_null, geth64_invalid;
};

static void *other_thread(void *arg)
{
    struct other *o = (struct other *)arg;

    o->load = cabi_load(GALLOC, SUP);
    o->store = cabi_store(GALLOC, SUP, 1);
    o->init = cabi_init();
    o->reset = cabi_reset();
    o->set_env = cabi_set_env(0, 1);
    o->check = cabi_check();
    o->galloc_out = 0;
    o->galloc = vm_galloc(V_WORKING, 4096, &o->galloc_out);
    o->gfree = vm_gfree(GALLOC, 4096);
    o->att64 = as_att64(vm_handle(1, VM_PRIV), 0);
    o->errno_after_att64 = vmm_errno();
    o->adsp_null = getadsp() == NULL;
    o->geth64_invalid = as_geth64(GALLOC) == INVLSID;
    return NULL;
}

static void from_another_thread(void)
{
    struct other o;
    pthread_t t;
    int mark = nrecords;

    memset(&o, 0x5A, sizeof o);
    CHECK(pthread_create(&t, NULL, other_thread, &o) == 0);
    CHECK(pthread_join(t, NULL) == 0);

    /* Not a fault: a code of its own, and a record that says why. */
    CHECK(CABI_WRONG_THREAD != CABI_FAULT);
    CHECK(o.load == CABI_WRONG_THREAD);
    CHECK(o.store == CABI_WRONG_THREAD);
    CHECK(logged(mark, CABI_LOG_WARN, "cabi_load", "thread other than the one that called cabi_init"));
    CHECK(logged(mark, CABI_LOG_WARN, "cabi_store", "thread other than"));
    CHECK(o.init == CABI_WRONG_THREAD);
    CHECK(logged(mark, CABI_LOG_WARN, "cabi_init", "another thread"));
    CHECK(o.reset == CABI_WRONG_THREAD);
    CHECK(o.set_env == CABI_WRONG_THREAD);
    CHECK(o.check == CABI_WRONG_THREAD);
    /* The services refuse too, with their error values. */
    CHECK(o.galloc == EINVAL);
    CHECK(o.galloc_out == 0);
    CHECK(logged(mark, CABI_LOG_WARN, "vm_galloc", "thread other than"));
    CHECK(o.gfree == EINVAL);
    CHECK(logged(mark, CABI_LOG_WARN, "vm_gfree", "thread other than"));
    CHECK(o.att64 == 0);
    CHECK(o.errno_after_att64 == EINVAL);
    CHECK(o.adsp_null);
    CHECK(o.geth64_invalid);

    /* None of it reached the machine: the allocation and its byte are
     * intact for the owner. */
    CHECK(cabi_load(GALLOC, SUP) == 0x42);
    CHECK(vm_galloc(V_WORKING, 4096, &(ulong){0}) == 0); /* a second one */
    CHECK(cabi_check() == CABI_OK);
}

static void log_records_reach_c(void)
{
    int mark;
    vmid_t vmid = -1;

    /* A refusal (warning) and an anomaly (error) of the services. */
    CHECK(cabi_set_env(2, 0) == CABI_OK);
    mark = nrecords;
    CHECK(vm_galloc(V_WORKING, 4096, &(ulong){0}) == EINVAL);
    CHECK(logged(mark, CABI_LOG_WARN, "vm_galloc", "interrupt"));
    CHECK(cabi_set_env(0, 1) == CABI_OK);
    mark = nrecords;
    vm_det((caddr_t)0x1234);
    CHECK(logged(mark, CABI_LOG_ERROR, "vm_det", "0x1234"));

    /* The level filter. */
    CHECK(cabi_set_log(collect, CABI_LOG_ERROR) == CABI_OK);
    mark = nrecords;
    CHECK(cabi_set_env(2, 0) == CABI_OK);
    CHECK(vms_create(&vmid, V_WORKING, 0, 4096, 0, 0) == EINVAL);
    CHECK(cabi_set_env(0, 1) == CABI_OK);
    CHECK(nrecords == mark); /* the warning was filtered out */
    vm_det((caddr_t)0x1234);
    CHECK(nrecords == mark + 1 && logged(mark, CABI_LOG_ERROR, "vm_det", NULL));
    CHECK(cabi_set_log(collect, CABI_LOG_OFF) == CABI_OK);
    mark = nrecords;
    vm_det((caddr_t)0x1234);
    CHECK(nrecords == mark);
    CHECK(cabi_set_log(collect, 6) == CABI_FAILED);
    CHECK(cabi_set_log(collect, -1) == CABI_FAILED);
    CHECK(cabi_set_log(collect, CABI_LOG_WARN) == CABI_OK);

    /* A harness call from inside the callback is refused, not deadlocked
     * (the services' lock is held while vm_det logs). */
    reenter = 1;
    vm_det((caddr_t)0x1234);
    CHECK(reenter == 0);
    CHECK(reenter_result == CABI_FAILED);
    CHECK(cabi_load(GALLOC, SUP) == 0x42); /* and all is well after */
}

static void *init_use_reset(void *arg)
{
    int *ok = (int *)arg;
    ulong k = 0;

    *ok = cabi_init() == CABI_OK && vm_galloc(V_WORKING, 4096, &k) == 0 && k == GALLOC &&
          cabi_load(k, SUP) == 0 && cabi_reset() == CABI_OK;
    return NULL;
}

static void reset_gives_a_fresh_machine(void)
{
    ulong k = 0;
    pthread_t t;
    int ok = 0;

    CHECK(cabi_reset() == CABI_OK);
    CHECK(cabi_load(GALLOC, SUP) == CABI_NOT_INIT);
    CHECK(vm_galloc(V_WORKING, 4096, &k) == EINVAL); /* nothing installed */
    CHECK(getadsp() == NULL);
    CHECK(cabi_reset() == CABI_NOT_INIT);

    /* Once reset, another thread may own a machine of its own. */
    CHECK(pthread_create(&t, NULL, init_use_reset, &ok) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(ok);

    CHECK(cabi_init() == CABI_OK);
    CHECK(vm_galloc(V_WORKING, 4096, &k) == 0);
    CHECK(k == GALLOC);                /* the first address again */
    CHECK(cabi_load(k, SUP) == 0);     /* zero-filled, not the old 0x42 */
    CHECK(getadsp() != NULL);
    CHECK(cabi_check() == CABI_OK);
}

static void records_to_stderr(void)
{
    int mark = nrecords;
    vmid_t vmid = -1;

    /* The test reads this one from stderr. */
    CHECK(cabi_set_log(NULL, CABI_LOG_WARN) == CABI_OK);
    CHECK(cabi_set_env(2, 0) == CABI_OK);
    CHECK(vms_create(&vmid, V_WORKING, 0, 4096, 0, 0) == EINVAL);
    CHECK(cabi_set_env(0, 1) == CABI_OK);
    CHECK(nrecords == mark);
    CHECK(vmid == -1);
}

int main(void)
{
    CHECK(cabi_set_log(collect, CABI_LOG_WARN) == CABI_OK);
    before_init();
    second_init();
    from_another_thread();
    log_records_reach_c();
    reset_gives_a_fresh_machine();
    records_to_stderr();
    CHECK(cabi_reset() == CABI_OK);
    return check_summary("harness");
}
