/* Tiny assertion helpers for the native tests (built with ASan + UBSan + LSan by `make test`). */
#ifndef CALLPIPE_NATIVE_TEST_CHECK_H
#define CALLPIPE_NATIVE_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        check_count++;                                                                    \
        if (!(cond)) {                                                                    \
            check_failures++;                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* Print the plain closing line ("N passed, N failed") and return the exit status. */
static inline int check_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_count - check_failures, check_failures);
    return check_failures ? 1 : 0;
}

static inline unsigned char *random_bytes(size_t n, unsigned *seed) {
    unsigned char *p = malloc(n ? n : 1);
    if (!p) abort();
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(*seed >> 16);
    }
    return p;
}
#endif
