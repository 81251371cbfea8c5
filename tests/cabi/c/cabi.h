/*
 * cabi.h: the host harness around the AIX services (crate vmm-cabi). It
 * stands in for the rest of a kernel so a C program can run a scenario
 * through the services' C functions (sys/vmuser.h, sys/adspace.h).
 * Everything must run on the thread that called cabi_init.
 */
#ifndef VMM_CABI_H
#define VMM_CABI_H

/* Build the emulated machine, the VMM and the services; install them; run
 * process 1 (64-bit). 0 or -1. */
int cabi_init(void);
/* kind 0: process p runs (its address space current); 1: a kernel process;
 * 2: an interrupt handler. 0 or -1. */
int cabi_set_env(int kind, int p);
/* Create process p with a 64- or 32-bit address space. 0 or -1. */
int cabi_create_process(int p, int bits);
/* Fork and exit hooks. 0 or -1. */
int cabi_fork(int parent, int child);
int cabi_exit(int p);
/* Load / store a byte through the emulated MMU in the current address
 * space, in problem state if problem != 0. Byte or 0; -1 on a fault. */
int cabi_load(unsigned long ea, int problem);
int cabi_store(unsigned long ea, int problem, int value);
/* The VMM's HPT, SLB and tables agree. 0 or -1. */
int cabi_check(void);

#endif
