/* test_libm.c — the math library is loaded on first use (src/common/libm.c):
 * a process that calls no math function does not map libm, the first call
 * maps it, each function the program defines returns what libm's own
 * returns, and SQLite's SQL math functions work through them. */
#include "testutil.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "shoal/dynlib.h"

/* (first: no other test has called a math function yet) */
static void libm_is_mapped_on_first_use(void **state)
{
	(void)state;
	if (tu_mapped("/libm.so")) {
		/* a sanitizer runtime links libm */
		printf("# libm is mapped at start (a runtime links it): nothing to check\n");
		skip();
	}
	volatile double x = 2.0;
	double r = log(x); /* (not sqrt: the compiler inlines it) */
	assert_true(tu_mapped("/libm.so"));
	assert_true(r > 0.6931 && r < 0.6932);
}

/* Ours next to libm's own, resolved by name from its handle. */
#define LIBM_1(f) static double (*own_##f)(double);
#define LIBM_2(f) static double (*own_##f)(double, double);
#include "common/libm_functions.h"
#undef LIBM_1
#undef LIBM_2

static void each_function_returns_libms_result(void **state)
{
	(void)state;
#define LIBM_1(f) {#f, &own_##f},
#define LIBM_2(f) {#f, &own_##f},
	static const struct dynlib_sym syms[] = {
#include "common/libm_functions.h"
	};
#undef LIBM_1
#undef LIBM_2
	void *h;
	char err[256];
	assert_int_equal(dynlib_open("libm.so.6", "libc6", syms, sizeof(syms) / sizeof(syms[0]),
				     &h, err, sizeof(err)), 0);
	static const double xs[] = {0.3, 0.75, 1.7, 2.5, 10.0, -0.6};
	size_t checked = 0;
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		volatile double x = xs[i], y = xs[(i + 1) % (sizeof(xs) / sizeof(xs[0]))];
		double a, b;
#define LIBM_1(f)                                                                     \
	a = f(x);                                                                     \
	b = own_##f(x);                                                               \
	if (!(isnan(a) && isnan(b)) && memcmp(&a, &b, sizeof(a)) != 0)                \
		fail_msg("%s(%g): %.17g, libm's %.17g", #f, (double)x, a, b);         \
	checked++;
#define LIBM_2(f)                                                                     \
	a = f(x, y);                                                                  \
	b = own_##f(x, y);                                                            \
	if (!(isnan(a) && isnan(b)) && memcmp(&a, &b, sizeof(a)) != 0)                \
		fail_msg("%s(%g, %g): %.17g, libm's %.17g", #f, (double)x, (double)y, a, b); \
	checked++;
#include "common/libm_functions.h"
#undef LIBM_1
#undef LIBM_2
	}
	assert_int_equal(checked, 6 * (sizeof(syms) / sizeof(syms[0])));
	/* (a table that sent one name to another function would have failed
	 * above: no two of them agree on all these inputs) */
}

static void sqlite_math_functions_work(void **state)
{
	(void)state;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT sqrt(2.0), pow(2, 10), cos(0.5), trunc(-1.5), acos(-1), atan2(1, 1), "
		"exp(1), ln(10)", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	volatile double two = 2.0, one = 1.0, ten = 10.0;
	const double want[] = {sqrt(two), pow(two, 10.0), cos(one / two), trunc(-1.5 * one),
			       acos(-one), atan2(one, one), exp(one), log(ten)};
	for (int i = 0; i < 8; i++) {
		double got = sqlite3_column_double(st, i);
		if (got != want[i])
			fail_msg("column %d: %.17g, want %.17g", i, got, want[i]);
	}
	assert_true(fabs(sqlite3_column_double(st, 4) - 3.14159265358979) < 1e-12);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(libm_is_mapped_on_first_use),
		cmocka_unit_test(each_function_returns_libms_result),
		cmocka_unit_test(sqlite_math_functions_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
