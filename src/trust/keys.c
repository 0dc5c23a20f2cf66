/*
 * keys.c — Ed25519 node and admission key pairs (libsodium) and their key
 * files: the 64-byte libsodium secret key (seed || pk) as 128 hex digits and
 * a newline, mode 0600. A key file that group or others can read or write is
 * refused, as OpenSSH refuses an unprotected private key.
 */
#include "trust/identity.h"
#include "trust/tfile.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "shoal/hex.h"

#define KEY_HEX_CHARS (2 * 64)

void keys_generate(struct shoal_keypair *kp)
{
	assert(kp);
	crypto_sign_keypair(kp->pk, kp->sk);
}

int keys_save(const char *path, const struct shoal_keypair *kp)
{
	char text[KEY_HEX_CHARS + 2];

	assert(path && kp);
	hex_encode(kp->sk, sizeof kp->sk, text);
	text[KEY_HEX_CHARS] = '\n';
	text[KEY_HEX_CHARS + 1] = '\0';
	int rc = tfile_write_new(path, text, KEY_HEX_CHARS + 1, 0600, NULL, 0);
	sodium_memzero(text, sizeof text);
	return rc;
}

int keys_load(const char *path, struct shoal_keypair *kp, char *errbuf, size_t errlen)
{
	uint8_t buf[SHOAL_KEY_FILE_BYTES_MAX + 1];
	struct shoal_keypair tmp;
	uint8_t check_pk[32], check_sk[64];
	size_t len = 0;
	int rc;

	assert(path && kp);
	rc = tfile_read(path, buf, SHOAL_KEY_FILE_BYTES_MAX, &len, 1, errbuf, errlen);
	if (rc != 0)
		goto out;
	/* Accept one trailing newline (or CRLF) and nothing else. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len != KEY_HEX_CHARS || hex_decode((const char *)buf, tmp.sk, sizeof tmp.sk) != 0) {
		tfile_err(errbuf, errlen,
			  "%s: not a shoal key file (expected %d hex digits)", path,
			  KEY_HEX_CHARS);
		rc = SHOAL_EPROTO;
		goto out;
	}
	/* The public half is stored in the secret key; rederive it from the
	 * seed so a corrupted file is caught here, not at the first verify. */
	if (crypto_sign_seed_keypair(check_pk, check_sk, tmp.sk) != 0 ||
	    sodium_memcmp(check_sk, tmp.sk, sizeof check_sk) != 0) {
		tfile_err(errbuf, errlen, "%s: key is inconsistent (corrupted file?)", path);
		rc = SHOAL_EPROTO;
		goto out;
	}
	memcpy(tmp.pk, check_pk, sizeof tmp.pk);
	memcpy(kp, &tmp, sizeof *kp);
out:
	sodium_memzero(buf, sizeof buf);
	sodium_memzero(&tmp, sizeof tmp);
	sodium_memzero(check_sk, sizeof check_sk);
	return rc;
}
