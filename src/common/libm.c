/*
 * libm.c — the C math library, loaded on first use.
 *
 * Mapping libm.so.6 costs a process ~0.5 MiB of VmRSS before it calls
 * anything: loading it runs the IFUNC resolvers spread across the library,
 * and the kernel maps 64 KiB around each page they touch. An agent's own
 * code needs no libm (its logarithms are integer arithmetic or constants,
 * src/core/membership.c), so the program links without -lm, and this file
 * defines every math function the program references (libm_functions.h):
 * the first call to any of them loads libm with dlopen, and each then calls
 * libm's own. SQLite's SQL math functions and the simulator get libm's
 * results; an agent never maps it.
 *
 * The definitions carry the standard names because the references are in
 * Debian's libsqlite3.a, which cannot be rebuilt to call other names (ld's
 * --wrap would rename them, but ld 2.40 crashes with it on this LTO build).
 * They are not exported to shared libraries (the executable exports only
 * what a library linked at build time references), so a library that
 * brings libm itself binds to libm's definitions, and dlsym on libm's
 * handle finds libm's, never these.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "shoal/dynlib.h"

#define LIBM_1(f) double f(double x);
#define LIBM_2(f) double f(double x, double y);
#include "common/libm_functions.h"
#undef LIBM_1
#undef LIBM_2

#define LIBM_1(f) static double (*p_##f)(double);
#define LIBM_2(f) static double (*p_##f)(double, double);
#include "common/libm_functions.h"
#undef LIBM_1
#undef LIBM_2

#define LIBM_1(f) {#f, &p_##f},
#define LIBM_2(f) {#f, &p_##f},
static const struct dynlib_sym libm_syms[] = {
#include "common/libm_functions.h"
};
#undef LIBM_1
#undef LIBM_2

static pthread_once_t libm_once = PTHREAD_ONCE_INIT;

static void libm_load(void)
{
	void *h;
	char err[256];
	if (dynlib_open("libm.so.6", "libc6", libm_syms,
			sizeof(libm_syms) / sizeof(libm_syms[0]), &h, err, sizeof(err)) != 0) {
		/* libm ships with libc6: only a broken system gets here, and a
		 * math function has no way to return an error */
		fprintf(stderr, "shoal: %s\n", err);
		abort();
	}
}

#define LIBM_1(f)                                   \
	double f(double x)                          \
	{                                           \
		pthread_once(&libm_once, libm_load); \
		return p_##f(x);                    \
	}
#define LIBM_2(f)                                   \
	double f(double x, double y)                \
	{                                           \
		pthread_once(&libm_once, libm_load); \
		return p_##f(x, y);                 \
	}
#include "common/libm_functions.h"
#undef LIBM_1
#undef LIBM_2
