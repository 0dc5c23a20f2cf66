/*
 * fuzz_wire_state.c — the push-pull state codec (wire_decode_state) and the
 * core's merge (member_core_recv_state) on arbitrary bytes.
 *
 * Properties checked:
 *   - a state that decodes re-encodes through wire_put_state_header and
 *     wire_put_state_entry to exactly the input bytes (the encoding is
 *     canonical, so nothing a decoder accepts is lost or reinterpreted);
 *   - member_core_recv_state fails exactly when the decoder does, with the
 *     same code, and then nothing changed: member count and order, every
 *     member's state and incarnation, our own incarnation and health, the
 *     shared identity directory, the stats (but packets_malformed), and no
 *     output was queued;
 *   - after a merged state the core's own state (member_core_encode_state)
 *     decodes, holds every member once, and every output it queued is
 *     well formed.
 *
 * The fixture (four nodes sharing one member_dir, fixed ids and seeds; node
 * 0 under test knows 1 alive, 2 suspect, 3 dead) comes from
 * fuzz_wire_payload.c and is fresh for every input.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_wire_state
 * writes DIR/wire_state/ and exits.
 */
#define FUZZ_WIRE_FIXTURE_ONLY
#include "fuzz_wire_payload.c"

/* Re-encodes decoded entries; the bytes must be the input's. */
static void check_reencode(const uint8_t *data, size_t size, bool join,
			   const struct wire_state_entry *es, size_t n)
{
	uint8_t *buf = malloc(size);
	CHECK(buf != NULL);
	struct wr w = wr_init(buf, size);
	wire_put_state_header(&w, join, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_state_entry(&w, &es[i]);
	CHECK(wr_ok(&w));
	CHECK(w.len == size);
	CHECK(memcmp(buf, data, size) == 0);
	free(buf);
}

/* The core's own state must decode and list each member exactly once. */
static void check_own_state(struct fx *x)
{
	struct member_core *c = x->cores[0];
	uint8_t *st = NULL;
	size_t len = 0;
	CHECK(member_core_encode_state(c, false, &st, &len) == 0);
	struct wire_state_entry *es = NULL;
	size_t n = 0;
	bool join = true;
	CHECK(wire_decode_state(st, len, &join, &es, &n) == 0);
	CHECK(!join);
	CHECK(n == member_core_count(c));
	for (size_t i = 0; i < n; i++) {
		uint32_t gid = member_dir_find(x->dir, es[i].node.id);
		struct member_info info;
		CHECK(gid != UINT32_MAX);
		CHECK(member_core_lookup(c, gid, &info) == 0);
		CHECK(es[i].state == info.state);
		CHECK(es[i].incarnation == info.incarnation);
		for (size_t j = 0; j < i; j++)
			CHECK(memcmp(es[j].node.id, es[i].node.id, SHOAL_NODE_ID_BYTES) != 0);
	}
	free(es);
	free(st);
}

/* --- seed corpus ----------------------------------------------------------- */

static void put_core_state(const char *dir, const char *name,
			  struct member_core *c, bool join)
{
	uint8_t *st = NULL;
	size_t len = 0;
	CHECK(member_core_encode_state(c, join, &st, &len) == 0);
	fx_write_file(dir, name, st, len);
	free(st);
}

static void entry_of(struct wire_state_entry *e, const struct member_identity *id,
		     uint32_t inc, uint8_t state)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->node.id, id->id, SHOAL_NODE_ID_BYTES);
	e->node.addr = id->addr;
	memcpy(e->node.name, id->name, sizeof(e->node.name));
	e->node.tags_count = id->tags_count;
	memcpy(e->node.tags, id->tags, sizeof(e->node.tags));
	e->incarnation = inc;
	e->state = state;
}

static void put_entries(const char *dir, const char *name, bool join,
			const struct wire_state_entry *es, size_t n)
{
	uint8_t buf[4096];
	struct wr w = wr_init(buf, sizeof(buf));
	wire_put_state_header(&w, join, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_state_entry(&w, &es[i]);
	CHECK(wr_ok(&w));
	struct wire_state_entry *check = NULL;
	size_t count = 0;
	bool j;
	CHECK(wire_decode_state(buf, w.len, &j, &check, &count) == 0);
	CHECK(count == n);
	free(check);
	fx_write_file(dir, name, buf, w.len);
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/wire_state", root);
	mkdir(dir, 0755);
	struct fx x;
	fx_open(&x);
	put_core_state(dir, "core-push", x.cores[0], false);
	put_core_state(dir, "core-join", x.cores[0], true);
	put_core_state(dir, "peer-fresh", x.cores[1], true);
	put_entries(dir, "empty", false, NULL, 0);

	struct wire_state_entry es[8];
	/* Every state, about known members, ourselves and a stranger. */
	entry_of(&es[0], &x.ids[1], 1, MEMBER_ALIVE);
	entry_of(&es[1], &x.ids[2], 2, MEMBER_ALIVE);  /* refutes suspicion */
	entry_of(&es[2], &x.ids[3], 1, MEMBER_LEFT);
	entry_of(&es[3], &x.ids[0], 1, MEMBER_SUSPECT); /* we refute */
	entry_of(&es[4], &x.stranger, 4, MEMBER_DEAD);
	put_entries(dir, "all-states", false, es, 5);

	/* The longest entry: v6, longest name, most and longest tags. */
	entry_of(&es[0], &x.stranger, 0xffffffffu, MEMBER_ALIVE);
	memset(es[0].node.name, 'n', SHOAL_NAME_BYTES_MAX);
	es[0].node.name[SHOAL_NAME_BYTES_MAX] = '\0';
	es[0].node.tags_count = SHOAL_TAGS_COUNT_MAX;
	for (int t = 0; t < SHOAL_TAGS_COUNT_MAX; t++) {
		memset(es[0].node.tags[t], 'a' + t, SHOAL_TAG_BYTES_MAX);
		es[0].node.tags[t][SHOAL_TAG_BYTES_MAX] = '\0';
	}
	entry_of(&es[1], &x.ids[2], 7, MEMBER_DEAD);
	es[1].node.addr.port = 1; /* same member at a new address */
	put_entries(dir, "longest-entry", true, es, 2);

	/* After merging the all-states view, node 0's state has all kinds. */
	entry_of(&es[0], &x.ids[1], 3, MEMBER_ALIVE);
	entry_of(&es[1], &x.stranger, 1, MEMBER_LEFT);
	{
		uint8_t buf[1024];
		struct wr w = wr_init(buf, sizeof(buf));
		wire_put_state_header(&w, false, 2);
		wire_put_state_entry(&w, &es[0]);
		wire_put_state_entry(&w, &es[1]);
		CHECK(wr_ok(&w));
		CHECK(member_core_recv_state(x.cores[0], buf, w.len, FX_NOW_MS + 1) == 0);
		fx_drain(&x);
	}
	put_core_state(dir, "core-merged", x.cores[0], false);
	fx_close(&x);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out != NULL) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_state_entry *es = NULL;
	size_t n = 0;
	bool join = false;
	int err = wire_decode_state(data, size, &join, &es, &n);
	if (err == 0) {
		check_reencode(data, size, join, es, n);
		free(es);
	} else {
		CHECK(err < 0);
		CHECK(es == NULL);
	}

	struct fx x;
	fx_open(&x);
	struct fx_snap before;
	fx_snapshot(&x, &before);
	int rc = member_core_recv_state(x.cores[0], data, size, FX_NOW_MS + 1);
	CHECK(rc == err);
	if (rc != 0) {
		fx_check_unchanged(&x, &before);
	} else {
		fx_drain(&x);
		check_own_state(&x);
	}
	fx_close(&x);
	return 0;
}
