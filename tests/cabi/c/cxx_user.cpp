/*
 * The headers from C++17: sys/adspace.h, sys/vmuser.h, sys/seg.h and
 * cabi.h compile with g++ -std=c++17 -Wall -Wextra -Werror, and their
 * extern "C" declarations link to the library's symbols (a C++-mangled
 * declaration would not). Exits 0 only if all checks pass.
 */
#include <cstdio>

#include <sys/seg.h>
#include <sys/adspace.h>
#include <sys/vmuser.h>
#include "cabi.h"

namespace {

int failures;
int checks;

void check(bool ok, int line, const char *what)
{
    checks++;
    if (!ok) {
        failures++;
        std::fprintf(stderr, "cxx_user.cpp:%d: check failed: %s\n", line, what);
    }
}

#define CHECK(cond) check((cond), __LINE__, #cond)

int records;

extern "C" void count_record(int, const char *) { records++; }

} // namespace

int main()
{
    static_assert(INVLSID == SIDMAX, "INVLSID through sys/seg.h");
    static_assert(sizeof(adspace_t) == 136, "adspace_t");

    CHECK(cabi_set_log(count_record, CABI_LOG_WARN) == CABI_OK);
    CHECK(cabi_init() == CABI_OK);
    ulong k = 0;
    CHECK(vm_galloc(V_WORKING, PAGESIZE, &k) == 0);
    CHECK(cabi_store(k, 0, 0x77) == CABI_OK);
    CHECK(cabi_load(k, 0) == 0x77);

    vmid_t vmid = -1;
    CHECK(vms_create(&vmid, V_WORKING, 0, PAGESIZE, 0, 0) == 0);
    vmhandle_t h = vm_handle(vmid, VM_PRIV);
    unsigned long long a = as_att64(h, 0x10);
    CHECK(a != 0 && (a & SEGOFFSET) == 0x10);
    CHECK(as_geth64(a) == h);
    CHECK(as_puth64(a, h) == 0);
    CHECK(as_getsrval64(1ULL << 60) == INVLSID);
    CHECK(as_det64(a) == 0);
    CHECK(vms_delete(vmid) == 0);
    adspace_t *adsp = getadsp();
    CHECK(adsp != nullptr && adsp->alloc == 0);

    CHECK(records == 0);
    CHECK(cabi_init() == CABI_ALREADY);
    CHECK(records == 1);
    CHECK(cabi_reset() == CABI_OK);
    std::printf("cxx: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
