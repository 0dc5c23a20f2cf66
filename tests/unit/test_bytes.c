/* test_bytes.c — the bounded reader fails closed; the writer's error sticks. */
#include "testutil.h"

#include <string.h>

#include "shoal/addr.h"
#include "shoal/bytes.h"
#include "shoal/rng.h"

static void reader_fails_closed(void **state)
{
	(void)state;
	const uint8_t buf[] = {0x01, 0x02, 0x03};
	struct rd r = rd_init(buf, sizeof(buf));
	uint32_t v32;
	uint16_t v16;
	assert_false(rd_u32(&r, &v32));
	assert_int_equal(rd_left(&r), 3); /* unchanged after failure */
	assert_true(rd_u16(&r, &v16));
	assert_int_equal(v16, 0x0102);
	struct rd sub;
	assert_false(rd_len8(&r, &sub)); /* says 3 bytes, none left */
	assert_int_equal(rd_left(&r), 1);
}

static void str8_rejects_control_and_long(void **state)
{
	(void)state;
	char out[8];
	const uint8_t ctl[] = {3, 'a', '\n', 'b'};
	struct rd r = rd_init(ctl, sizeof(ctl));
	assert_false(rd_str8(&r, out, 7));
	const uint8_t longs[] = {8, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'};
	r = rd_init(longs, sizeof(longs));
	assert_false(rd_str8(&r, out, 7));
	const uint8_t ok[] = {2, 'h', 'i'};
	r = rd_init(ok, sizeof(ok));
	assert_true(rd_str8(&r, out, 7));
	assert_string_equal(out, "hi");
}

static void writer_error_is_sticky(void **state)
{
	(void)state;
	uint8_t buf[5];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u32(&w, 0xdeadbeef);
	assert_true(wr_ok(&w));
	wr_u16(&w, 1);
	assert_false(wr_ok(&w));
	wr_u8(&w, 1);
	assert_false(wr_ok(&w));
	assert_int_equal(w.len, 4);
}

static void round_trip_all_widths(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, 0xab);
	wr_u16(&w, 0xbeef);
	wr_u32(&w, 0x01020304);
	wr_u64(&w, 0x1122334455667788ull);
	size_t m = wr_begin16(&w);
	wr_str8(&w, "node-1", 32);
	wr_end16(&w, m);
	assert_true(wr_ok(&w));
	struct rd r = rd_init(buf, w.len), sub;
	uint8_t a = 0;
	uint16_t b = 0;
	uint32_t c = 0;
	uint64_t d = 0;
	char name[33] = "";
	assert_true(rd_u8(&r, &a) && rd_u16(&r, &b) && rd_u32(&r, &c) && rd_u64(&r, &d));
	assert_true(rd_len16(&r, &sub) && rd_str8(&sub, name, 32));
	assert_int_equal(a, 0xab);
	assert_int_equal(b, 0xbeef);
	assert_int_equal(c, 0x01020304);
	assert_true(d == 0x1122334455667788ull);
	assert_string_equal(name, "node-1");
	assert_true(rd_empty(&r) && rd_empty(&sub));
}

static void addr_parse_format(void **state)
{
	(void)state;
	struct shoal_addr a, b;
	char s[SHOAL_ADDR_STR_MAX];
	assert_int_equal(addr_parse("127.0.0.1:7946", &a), 0);
	assert_string_equal(addr_format(&a, s), "127.0.0.1:7946");
	assert_int_equal(addr_parse("[::1]:80", &b), 0);
	assert_string_equal(addr_format(&b, s), "[::1]:80");
	assert_false(addr_equal(&a, &b));
	assert_int_not_equal(addr_parse("127.0.0.1", &a), 0);
	assert_int_not_equal(addr_parse("127.0.0.1:0", &a), 0);
	assert_int_not_equal(addr_parse("127.0.0.1:70000", &a), 0);
	assert_int_not_equal(addr_parse("300.0.0.1:1", &a), 0);
	uint8_t buf[32];
	struct wr w = wr_init(buf, sizeof(buf));
	addr_put(&w, &b);
	struct rd r = rd_init(buf, w.len);
	struct shoal_addr c;
	assert_true(addr_get(&r, &c));
	assert_true(addr_equal(&b, &c));
	uint8_t bad[] = {5, 1, 2, 3, 4, 0, 1};
	r = rd_init(bad, sizeof(bad));
	assert_false(addr_get(&r, &c));
}

static void rng_is_deterministic_and_bounded(void **state)
{
	(void)state;
	struct rng a, b;
	rng_seed(&a, 42);
	rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++) {
		uint64_t x = rng_below(&a, 7);
		assert_true(x < 7);
		assert_true(x == rng_below(&b, 7));
	}
	rng_seed(&b, 43);
	int same = 0;
	for (int i = 0; i < 64; i++)
		same += rng_next(&a) == rng_next(&b);
	assert_true(same < 2);
}

/* rng_below draws exactly what plain rejection sampling draws (a recorded
 * run replays only if it does), for bounds where rejection is rare and
 * where it rejects nearly half of all draws (just above 2^63). */
static void rng_below_is_plain_rejection_sampling(void **state)
{
	(void)state;
	static const uint64_t bounds[] = {1, 2, 7, 10000, (UINT64_C(1) << 32) + 1,
					  (UINT64_C(1) << 63) + 1, (UINT64_C(3) << 62) + 5,
					  UINT64_MAX};
	for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
		uint64_t n = bounds[k];
		struct rng a, b;
		rng_seed(&a, 7 + k);
		rng_seed(&b, 7 + k);
		uint64_t limit = UINT64_MAX - UINT64_MAX % n;
		for (int i = 0; i < 2000; i++) {
			uint64_t x;
			do {
				x = rng_next(&b);
			} while (x >= limit);
			assert_true(rng_below(&a, n) == x % n);
		}
		assert_true(rng_next(&a) == rng_next(&b)); /* as many draws */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reader_fails_closed),
		cmocka_unit_test(str8_rejects_control_and_long),
		cmocka_unit_test(writer_error_is_sticky),
		cmocka_unit_test(round_trip_all_widths),
		cmocka_unit_test(addr_parse_format),
		cmocka_unit_test(rng_is_deterministic_and_bounded),
		cmocka_unit_test(rng_below_is_plain_rejection_sampling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
