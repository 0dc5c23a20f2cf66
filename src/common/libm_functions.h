/*
 * libm_functions.h — every C math library function the program calls,
 * defined by libm.c to load libm on first use. LIBM_1 takes one double,
 * LIBM_2 two. The program links without -lm, so a call to a math function
 * not listed here fails to link ("undefined reference"), and adding it here
 * is the fix. Callers: SQLite's SQL math functions (never used by shoal's
 * own SQL) and the simulator's latency model and quantiles; the agent's own
 * code calls none (src/core/membership.c, "arithmetic").
 */
LIBM_1(acos)
LIBM_1(acosh)
LIBM_1(asin)
LIBM_1(asinh)
LIBM_1(atan)
LIBM_2(atan2)
LIBM_1(atanh)
LIBM_1(ceil)
LIBM_1(cos)
LIBM_1(cosh)
LIBM_1(exp)
LIBM_1(floor)
LIBM_2(fmod)
LIBM_1(log)
LIBM_1(log10)
LIBM_1(log1p)
LIBM_1(log2)
LIBM_2(pow)
LIBM_1(sin)
LIBM_1(sinh)
LIBM_1(sqrt)
LIBM_1(tan)
LIBM_1(tanh)
LIBM_1(trunc)
