/* sync.c — codecs of the replication stream messages: digests, DATA turns of
 * a sync session, blob requests and chunks (see sync.h for the formats). */
#include "core/sync.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

_Static_assert(SYNC_DIGEST_MSG_BYTES <= SHOAL_SYNC_MSG_BYTES_MAX, "digest fits a message");
_Static_assert(SYNC_BLOB_CHUNK_OVERHEAD_BYTES + SHOAL_BLOB_CHUNK_BYTES_MAX <=
		       SHOAL_SYNC_MSG_BYTES_MAX,
	       "a full chunk fits a message");
_Static_assert(SYNC_DATA_OVERHEAD_BYTES + 2 + SHOAL_RECORD_BYTES_MAX <=
		       SHOAL_SYNC_MSG_BYTES_MAX,
	       "a largest record fits a DATA message");
_Static_assert(SHOAL_SYNC_MSG_BYTES_MAX / SYNC_WANT_BYTES < 65536, "section counts fit u16");

const char *sync_type_name(int type)
{
	switch (type) {
	case SYNC_DIGEST: return "digest";
	case SYNC_DATA: return "data";
	case SYNC_BLOB_REQ: return "blob_req";
	case SYNC_BLOB_CHUNK: return "blob_chunk";
	case SYNC_BLOB_NONE: return "blob_none";
	case SYNC_ROOT: return "root";
	default: return "unknown";
	}
}

bool sync_head_valid(const struct sync_head *h)
{
	assert(h);
	if (h->seq_min == 0 || h->seq_min > h->seq_max || h->count == 0)
		return false;
	/* count <= seq_max - seq_min + 1, written so it cannot overflow */
	return h->count - 1 <= h->seq_max - h->seq_min;
}

bool sync_want_valid(const struct sync_want *w)
{
	assert(w);
	if (w->from_seq == 0 || w->count == 0 || w->count > SHOAL_SYNC_RANGE_COUNT_MAX)
		return false;
	return w->from_seq <= UINT64_MAX - (w->count - 1); /* last seq exists */
}

static bool get_head(struct rd *r, struct sync_head *h)
{
	return rd_copy(r, h->author, sizeof(h->author)) && rd_u64(r, &h->seq_min) &&
	       rd_u64(r, &h->seq_max) && rd_u64(r, &h->count) &&
	       rd_copy(r, h->hash, sizeof(h->hash));
}

static bool get_want(struct rd *r, struct sync_want *w)
{
	return rd_copy(r, w->author, sizeof(w->author)) && rd_u64(r, &w->from_seq) &&
	       rd_u32(r, &w->count);
}

/* Reads one section: count(u16) then count entries of a fixed or
 * length-prefixed shape, validating each. *sec is a reader over exactly the
 * section's entries. */
static int get_section(struct rd *r, int which, uint16_t *count, struct rd *sec)
{
	if (!rd_u16(r, count))
		return SHOAL_ETRUNC;
	struct rd start = *r;
	for (uint16_t i = 0; i < *count; i++) {
		if (which == 0) {
			struct sync_head h;
			if (!get_head(r, &h))
				return SHOAL_ETRUNC;
			if (!sync_head_valid(&h))
				return SHOAL_EPROTO;
		} else if (which == 1) {
			struct sync_want w;
			if (!get_want(r, &w))
				return SHOAL_ETRUNC;
			if (!sync_want_valid(&w))
				return SHOAL_EPROTO;
		} else {
			struct rd body;
			if (!rd_len16(r, &body))
				return SHOAL_ETRUNC;
			/* Scratch record: static would not be thread-safe, and a
			 * record is under 1 KiB. */
			struct record rec;
			int rc = record_decode_buf(body.p, body.len, &rec);
			if (rc == SHOAL_ETRUNC || rc == SHOAL_ETRAILING)
				return SHOAL_EPROTO; /* its length prefix lied */
			if (rc)
				return rc;
		}
	}
	*sec = rd_init(start.p, start.len - r->len);
	return 0;
}

static int decode_data(struct rd *r, struct sync_msg *m)
{
	if (!rd_u8(r, &m->flags))
		return SHOAL_ETRUNC;
	if (m->flags & ~(SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE | SYNC_F_FIN))
		return SHOAL_EPROTO;
	if ((m->flags & SYNC_F_FIN) &&
	    (m->flags & (SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE)) !=
		    (SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE))
		return SHOAL_EPROTO;
	int rc = get_section(r, 0, &m->heads_count, &m->heads);
	if (rc == 0)
		rc = get_section(r, 1, &m->wants_count, &m->wants);
	if (rc == 0)
		rc = get_section(r, 2, &m->records_count, &m->records);
	return rc;
}

static int decode_blob(struct rd *r, struct sync_msg *m)
{
	if (!rd_copy(r, m->hash, sizeof(m->hash)))
		return SHOAL_ETRUNC;
	if (m->type == SYNC_BLOB_NONE)
		return 0;
	if (!rd_u64(r, &m->offset))
		return SHOAL_ETRUNC;
	if (m->type == SYNC_BLOB_REQ) {
		if (!rd_u32(r, &m->len))
			return SHOAL_ETRUNC;
		if (m->len == 0 || m->len > SHOAL_BLOB_CHUNK_BYTES_MAX ||
		    m->offset > SHOAL_BLOB_BYTES_MAX)
			return SHOAL_EPROTO;
		return 0;
	}
	if (!rd_u64(r, &m->total) || !rd_u32(r, &m->len))
		return SHOAL_ETRUNC;
	if (m->total > SHOAL_BLOB_BYTES_MAX || m->len > SHOAL_BLOB_CHUNK_BYTES_MAX ||
	    m->offset > m->total || m->len > m->total - m->offset)
		return SHOAL_EPROTO;
	if (m->len == 0 && m->offset != m->total)
		return SHOAL_EPROTO; /* an empty chunk only says "at the end" */
	if (!rd_bytes(r, m->len, &m->data))
		return SHOAL_ETRUNC;
	return 0;
}

int sync_decode(const uint8_t *p, size_t len, struct sync_msg *m)
{
	assert(m);
	assert(p || len == 0);
	memset(m, 0, sizeof(*m));
	if (len > SHOAL_SYNC_MSG_BYTES_MAX)
		return SHOAL_ETOOBIG;
	struct rd r = rd_init(p, len);
	uint8_t version;
	if (!rd_u8(&r, &version))
		return SHOAL_ETRUNC;
	if (version != SYNC_VERSION)
		return SHOAL_EVERSION;
	if (!rd_u8(&r, &m->type))
		return SHOAL_ETRUNC;
	int rc;
	switch (m->type) {
	case SYNC_DIGEST: {
		uint16_t buckets;
		if (!rd_u16(&r, &buckets))
			return SHOAL_ETRUNC;
		if (buckets != SHOAL_SYNC_BUCKETS)
			return SHOAL_EPROTO;
		rc = rd_bytes(&r, (size_t)SHOAL_SYNC_BUCKETS * SHOAL_SYNC_DIGEST_BYTES,
			      &m->digest) ? 0 : SHOAL_ETRUNC;
		break;
	}
	case SYNC_ROOT:
		rc = rd_bytes(&r, SHOAL_SYNC_DIGEST_BYTES, &m->root) ? 0 : SHOAL_ETRUNC;
		break;
	case SYNC_DATA:
		rc = decode_data(&r, m);
		break;
	case SYNC_BLOB_REQ:
	case SYNC_BLOB_CHUNK:
	case SYNC_BLOB_NONE:
		rc = decode_blob(&r, m);
		break;
	default:
		return SHOAL_EPROTO;
	}
	if (rc)
		return rc;
	if (!rd_empty(&r))
		return SHOAL_ETRAILING;
	return 0;
}

bool sync_next_head(struct sync_msg *m, struct sync_head *h)
{
	assert(m && h && m->type == SYNC_DATA);
	if (rd_empty(&m->heads))
		return false;
	bool ok = get_head(&m->heads, h);
	assert(ok); /* validated by sync_decode */
	return ok;
}

bool sync_next_want(struct sync_msg *m, struct sync_want *w)
{
	assert(m && w && m->type == SYNC_DATA);
	if (rd_empty(&m->wants))
		return false;
	bool ok = get_want(&m->wants, w);
	assert(ok);
	return ok;
}

bool sync_next_record(struct sync_msg *m, struct record *r)
{
	assert(m && r && m->type == SYNC_DATA);
	if (rd_empty(&m->records))
		return false;
	struct rd body;
	bool ok = rd_len16(&m->records, &body) &&
		  record_decode_buf(body.p, body.len, r) == 0;
	assert(ok);
	return ok;
}

static void put_header(struct wr *w, uint8_t type)
{
	wr_u8(w, SYNC_VERSION);
	wr_u8(w, type);
}

void sync_put_root(struct wr *w, const uint8_t root[SHOAL_SYNC_DIGEST_BYTES])
{
	assert(w && root);
	put_header(w, SYNC_ROOT);
	wr_bytes(w, root, SHOAL_SYNC_DIGEST_BYTES);
}

void sync_root_of(const uint8_t digest[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES],
		  uint8_t root[SHOAL_SYNC_DIGEST_BYTES])
{
	static const char domain[] = "shoal/sync-root/v1";
	assert(digest && root);
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, SHOAL_SYNC_DIGEST_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)domain, sizeof(domain) - 1);
	crypto_generichash_update(&st, &digest[0][0],
				  (size_t)SHOAL_SYNC_BUCKETS * SHOAL_SYNC_DIGEST_BYTES);
	crypto_generichash_final(&st, root, SHOAL_SYNC_DIGEST_BYTES);
}

void sync_put_digest(struct wr *w,
		     const uint8_t digest[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES])
{
	assert(w && digest);
	put_header(w, SYNC_DIGEST);
	wr_u16(w, SHOAL_SYNC_BUCKETS);
	wr_bytes(w, digest, (size_t)SHOAL_SYNC_BUCKETS * SHOAL_SYNC_DIGEST_BYTES);
}

void sync_put_blob_req(struct wr *w, const uint8_t hash[SYNC_BLOB_HASH_BYTES],
		       uint64_t offset, uint32_t len)
{
	assert(w && hash);
	assert(len >= 1 && len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
	put_header(w, SYNC_BLOB_REQ);
	wr_bytes(w, hash, SYNC_BLOB_HASH_BYTES);
	wr_u64(w, offset);
	wr_u32(w, len);
}

void sync_put_blob_chunk(struct wr *w, const uint8_t hash[SYNC_BLOB_HASH_BYTES],
			 uint64_t offset, uint64_t total, const uint8_t *data,
			 uint32_t len)
{
	assert(w && hash && (data || len == 0));
	assert(len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
	assert(offset <= total && len <= total - offset);
	put_header(w, SYNC_BLOB_CHUNK);
	wr_bytes(w, hash, SYNC_BLOB_HASH_BYTES);
	wr_u64(w, offset);
	wr_u64(w, total);
	wr_u32(w, len);
	wr_bytes(w, data, len);
}

void sync_put_blob_none(struct wr *w, const uint8_t hash[SYNC_BLOB_HASH_BYTES])
{
	assert(w && hash);
	put_header(w, SYNC_BLOB_NONE);
	wr_bytes(w, hash, SYNC_BLOB_HASH_BYTES);
}

uint32_t sync_blob_chunk_len(uint64_t total, uint64_t offset, uint32_t len)
{
	assert(len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
	if (offset >= total)
		return 0;
	uint64_t left = total - offset;
	return left < len ? (uint32_t)left : len;
}

/* --- DATA builder ------------------------------------------------------------ */

static void patch_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void sync_data_begin(struct sync_data_wr *b, uint8_t *buf, size_t cap)
{
	assert(b && buf);
	assert(cap >= SYNC_DATA_OVERHEAD_BYTES && cap <= SHOAL_SYNC_MSG_BYTES_MAX);
	b->w = wr_init(buf, cap);
	put_header(&b->w, SYNC_DATA);
	wr_u8(&b->w, 0); /* flags, set by sync_data_end */
	b->count_at = b->w.len;
	wr_u16(&b->w, 0);
	b->section = 0;
	b->n = 0;
}

/* Moves to section `to`, closing the ones before it. */
static void open_section(struct sync_data_wr *b, uint8_t to)
{
	assert(to >= b->section && to <= 2);
	while (b->section < to) {
		patch_u16(b->w.buf + b->count_at, b->n);
		b->section++;
		b->count_at = b->w.len;
		wr_u16(&b->w, 0); /* room reserved by fits() */
		b->n = 0;
	}
	assert(wr_ok(&b->w));
}

/* True if n more bytes fit in section `to`, leaving room for the counts of
 * the sections after it. */
static bool fits(const struct sync_data_wr *b, uint8_t to, size_t n)
{
	assert(to >= b->section && to <= 2);
	size_t counts = 2u * (size_t)(2 - to) + 2u * (size_t)(to - b->section);
	uint16_t in_section = b->section == to ? b->n : 0;
	return b->w.len + counts + n <= b->w.cap && in_section < UINT16_MAX;
}

bool sync_data_add_head(struct sync_data_wr *b, const struct sync_head *h)
{
	assert(b && h && sync_head_valid(h));
	assert(b->section == 0);
	if (!fits(b, 0, SYNC_HEAD_BYTES))
		return false;
	wr_bytes(&b->w, h->author, sizeof(h->author));
	wr_u64(&b->w, h->seq_min);
	wr_u64(&b->w, h->seq_max);
	wr_u64(&b->w, h->count);
	wr_bytes(&b->w, h->hash, sizeof(h->hash));
	b->n++;
	return true;
}

bool sync_data_add_want(struct sync_data_wr *b, const struct sync_want *w)
{
	assert(b && w && sync_want_valid(w));
	assert(b->section <= 1);
	if (!fits(b, 1, SYNC_WANT_BYTES))
		return false;
	open_section(b, 1);
	wr_bytes(&b->w, w->author, sizeof(w->author));
	wr_u64(&b->w, w->from_seq);
	wr_u32(&b->w, w->count);
	b->n++;
	return true;
}

bool sync_data_add_record(struct sync_data_wr *b, const struct record *r)
{
	assert(b && r);
	size_t size = record_size(r);
	if (!fits(b, 2, 2 + size))
		return false;
	open_section(b, 2);
	size_t mark = wr_begin16(&b->w);
	record_encode(&b->w, r);
	wr_end16(&b->w, mark);
	assert(wr_ok(&b->w));
	b->n++;
	return true;
}

size_t sync_data_end(struct sync_data_wr *b, uint8_t flags)
{
	assert(b);
	assert(!(flags & ~(SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE | SYNC_F_FIN)));
	open_section(b, 2);
	patch_u16(b->w.buf + b->count_at, b->n);
	b->w.buf[SYNC_HEADER_BYTES] = flags;
	assert(wr_ok(&b->w) && b->w.len <= SHOAL_SYNC_MSG_BYTES_MAX);
	return b->w.len;
}
