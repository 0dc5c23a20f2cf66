/*
 * dynlib.h — load an optional shared library at run time (dlopen) and
 * resolve a table of its functions (dlsym).
 *
 * Why: libraries that only some commands need (libcurl for fetches,
 * libmicrohttpd for the HTTP API) are not linked into the binary, so an
 * idle agent does not map them and their dependency trees (gnutls, krb5,
 * ldap, ...) at start. Headers are still used for types; calls go through
 * function pointers filled in here.
 *
 *   static CURLcode (*p_perform)(CURL *);
 *   static const struct dynlib_sym syms[] = {{"curl_easy_perform", &p_perform}};
 *   rc = dynlib_open("libcurl.so.4", "libcurl4", syms, 1, &h, err, sizeof(err));
 */
#ifndef SHOAL_DYNLIB_H
#define SHOAL_DYNLIB_H

#include <stddef.h>

#include "shoal/error.h"

/* One function to resolve: name, and where to store its address (a pointer
 * to a function pointer variable of the right type). */
struct dynlib_sym {
	const char *name;
	void *slot;
};

/* Loads soname (RTLD_NOW | RTLD_LOCAL) and stores every symbol's address in
 * its slot. Returns 0 with *handle set (never unloaded: callers keep the
 * library for the life of the process), or with err set to a message naming
 * the library, what failed and the package to install (pkg):
 *   SHOAL_ENOTFOUND  the library cannot be loaded
 *   SHOAL_EVERSION   it loads but lacks a symbol (too old)
 * On error the library is unloaded again and every slot is left NULL. */
int dynlib_open(const char *soname, const char *pkg, const struct dynlib_sym *syms,
		size_t count, void **handle, char *err, size_t errlen) SHOAL_MUST_CHECK;

#endif
