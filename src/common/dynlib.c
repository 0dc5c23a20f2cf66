/*
 * dynlib.c — dlopen an optional library and resolve its functions into a
 * caller's table of function pointers (see shoal/dynlib.h for why).
 *
 * Slots are written with memcpy: POSIX guarantees that dlsym's void * can
 * hold a function's address, but ISO C has no conversion between object and
 * function pointers, so the bytes are copied instead of cast.
 */
#include "shoal/dynlib.h"

#include <assert.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(void *) == sizeof(void (*)(void)),
	       "function pointers are stored through dlsym's void *");

static void clear_slots(const struct dynlib_sym *syms, size_t count)
{
	void (*none)(void) = NULL;
	for (size_t i = 0; i < count; i++)
		memcpy(syms[i].slot, &none, sizeof(none));
}

int dynlib_open(const char *soname, const char *pkg, const struct dynlib_sym *syms,
		size_t count, void **handle, char *err, size_t errlen)
{
	assert(soname != NULL && pkg != NULL && handle != NULL);
	assert(count == 0 || syms != NULL);
	*handle = NULL;
	clear_slots(syms, count);
	dlerror(); /* clear a stale message */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *why = dlerror();
		snprintf(err, errlen, "cannot load %s (%s); install the %s package",
			 soname, why ? why : "unknown error", pkg);
		return SHOAL_ENOTFOUND;
	}
	for (size_t i = 0; i < count; i++) {
		assert(syms[i].name != NULL && syms[i].slot != NULL);
		dlerror();
		void *p = dlsym(h, syms[i].name);
		if (p == NULL) {
			snprintf(err, errlen, "%s has no function %s (too old?); install a newer %s package",
				 soname, syms[i].name, pkg);
			clear_slots(syms, count);
			dlclose(h);
			return SHOAL_EVERSION;
		}
		memcpy(syms[i].slot, &p, sizeof(p));
	}
	*handle = h;
	return 0;
}
