/*
 * rng.h — a seeded, deterministic generator (xoshiro256**, seeded through
 * splitmix64). The sans-IO core takes all its randomness from one of these,
 * so a seed replays a run exactly. Not for keys or nonces: those come from
 * libsodium in the runtime.
 */
#ifndef SHOAL_RNG_H
#define SHOAL_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Uniform in [0, 1). */
double rng_unit(struct rng *r);

#endif
