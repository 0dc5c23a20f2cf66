/* rng.c — xoshiro256** (Blackman & Vigna), seeded with splitmix64. */
#include "shoal/rng.h"

#include <assert.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	assert(n > 0);
	/* Rejection sampling removes modulo bias: x is drawn again at or above
	 * UINT64_MAX - UINT64_MAX % n, which is above UINT64_MAX - n, so the
	 * division that finds that bound is needed only for an x above this
	 * (a chance of n in 2^64). The simulator's warm start draws 10^8 of
	 * these. */
	for (;;) {
		uint64_t x = rng_next(r);
		if (x <= UINT64_MAX - n || x < UINT64_MAX - UINT64_MAX % n)
			return x % n;
	}
}

double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
