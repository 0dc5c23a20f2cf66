/* error.c — names for SHOAL_E* codes. */
#include "shoal/error.h"

const char *shoal_strerror(int err)
{
	switch (err) {
	case SHOAL_OK: return "success";
	case SHOAL_EINVAL: return "invalid argument";
	case SHOAL_ENOMEM: return "out of memory";
	case SHOAL_ETRUNC: return "truncated input";
	case SHOAL_ETOOBIG: return "over size limit";
	case SHOAL_EPROTO: return "malformed input";
	case SHOAL_EVERSION: return "unsupported version";
	case SHOAL_EBADMAC: return "authentication failed (bad MAC)";
	case SHOAL_EBADSIG: return "bad signature";
	case SHOAL_EREPLAY: return "replayed message";
	case SHOAL_EFLEET: return "wrong fleet";
	case SHOAL_EUNADMITTED: return "not admitted";
	case SHOAL_EEXPIRED: return "expired";
	case SHOAL_EIO: return "I/O error";
	case SHOAL_ECONFIG: return "configuration error";
	case SHOAL_EKEYMODE: return "unsafe key file permissions";
	case SHOAL_ENOTFOUND: return "not found";
	case SHOAL_EEXIST: return "already exists";
	case SHOAL_EFULL: return "limit reached";
	case SHOAL_ESTATE: return "not allowed in this state";
	case SHOAL_EDB: return "database error";
	case SHOAL_ECRYPTO: return "crypto failure";
	case SHOAL_ETIMEDOUT: return "timed out";
	case SHOAL_ECONN: return "connection failed";
	case SHOAL_ETRAILING: return "trailing bytes";
	default: return "unknown error";
	}
}
