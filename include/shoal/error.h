/*
 * error.h — the one error convention.
 *
 * Functions return 0 on success or a negative SHOAL_E* code; shoal_strerror()
 * names it. Unless a function says otherwise, on error nothing is changed.
 */
#ifndef SHOAL_ERROR_H
#define SHOAL_ERROR_H

#define SHOAL_MUST_CHECK __attribute__((warn_unused_result))

enum shoal_err {
	SHOAL_OK = 0,
	SHOAL_EINVAL = -1,      /* invalid argument */
	SHOAL_ENOMEM = -2,      /* out of memory */
	SHOAL_ETRUNC = -3,      /* input ends early */
	SHOAL_ETOOBIG = -4,     /* input or output over its bound */
	SHOAL_EPROTO = -5,      /* malformed input */
	SHOAL_EVERSION = -6,    /* unsupported format version */
	SHOAL_EBADMAC = -7,     /* decryption or MAC check failed */
	SHOAL_EBADSIG = -8,     /* signature check failed */
	SHOAL_EREPLAY = -9,     /* replayed or too old */
	SHOAL_EFLEET = -10,     /* belongs to another fleet */
	SHOAL_EUNADMITTED = -11,/* sender not admitted */
	SHOAL_EEXPIRED = -12,   /* certificate or metadata expired */
	SHOAL_EIO = -13,        /* I/O error (errno has details) */
	SHOAL_ECONFIG = -14,    /* configuration error */
	SHOAL_EKEYMODE = -15,   /* key file has unsafe permissions */
	SHOAL_ENOTFOUND = -16,  /* no such object */
	SHOAL_EEXIST = -17,     /* already exists */
	SHOAL_EFULL = -18,      /* a bounded queue or table is full */
	SHOAL_ESTATE = -19,     /* not allowed in the current state */
	SHOAL_EDB = -20,        /* database error */
	SHOAL_ECRYPTO = -21,    /* crypto library failure */
	SHOAL_ETIMEDOUT = -22,  /* operation timed out */
	SHOAL_ECONN = -23,      /* connection failed or closed */
	SHOAL_ETRAILING = -24,  /* unexpected bytes after the end */
	SHOAL_ERR_MIN_ = -25
};

/* Returns a static, human-readable name for a SHOAL_E* code. */
const char *shoal_strerror(int err);

#endif
