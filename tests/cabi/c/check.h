/*
 * check.h: the convention the C test programs share. CHECK counts a check
 * and reports a failed one on stderr with its file and line; a program
 * ends with `return check_summary("tag");`, which prints the line
 * "tag: N checks, M failures" that tests/cabi/tests/common reads and gives
 * the exit status (0 only if every check passed).
 */
#ifndef CABI_CHECK_H
#define CABI_CHECK_H

#include <stdio.h>

static int failures;
static int checks;

#define CHECK(cond)                                                          \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

static int check_summary(const char *tag)
{
    printf("%s: %d checks, %d failures\n", tag, checks, failures);
    return failures == 0 ? 0 : 1;
}

#endif /* CABI_CHECK_H */
