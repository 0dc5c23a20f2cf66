/* test_dynlib.c — optional libraries are loaded only when used: dynlib_open
 * resolves a table or fails with a message naming the library and package;
 * libcurl is mapped only after the first fetch and libmicrohttpd only after
 * the first http_start (an idle agent maps neither). */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/http.h"
#include "shoal/dynlib.h"
#include "trust/tuf.h"

static void resolves_functions(void **state)
{
	(void)state;
	double (*p_cos)(double) = NULL;
	double (*p_sqrt)(double) = NULL;
	const struct dynlib_sym syms[] = {{"cos", &p_cos}, {"sqrt", &p_sqrt}};
	void *h = NULL;
	char err[256] = "";
	assert_int_equal(dynlib_open("libm.so.6", "libc6", syms, 2, &h, err, sizeof(err)), 0);
	assert_non_null(h);
	assert_non_null(p_cos);
	assert_true(p_cos(0.0) == 1.0);
	assert_true(p_sqrt(16.0) == 4.0);
}

static void missing_library_names_package(void **state)
{
	(void)state;
	void (*p_f)(void) = (void (*)(void))resolves_functions; /* must be cleared */
	const struct dynlib_sym syms[] = {{"f", &p_f}};
	void *h = (void *)1;
	char err[256] = "";
	assert_int_equal(dynlib_open("libshoal-no-such-lib.so.9", "shoal-no-such-pkg", syms, 1,
				     &h, err, sizeof(err)),
			 SHOAL_ENOTFOUND);
	assert_null(h);
	assert_null(p_f);
	assert_non_null(strstr(err, "libshoal-no-such-lib.so.9"));
	assert_non_null(strstr(err, "install the shoal-no-such-pkg package"));
}

static void missing_symbol_clears_table(void **state)
{
	(void)state;
	double (*p_cos)(double) = NULL;
	void (*p_none)(void) = NULL;
	const struct dynlib_sym syms[] = {{"cos", &p_cos}, {"shoal_no_such_function", &p_none}};
	void *h = (void *)1;
	char err[256] = "";
	assert_int_equal(dynlib_open("libm.so.6", "libc6", syms, 2, &h, err, sizeof(err)),
			 SHOAL_EVERSION);
	assert_null(h);
	assert_null(p_cos); /* resolved first, cleared on the failure */
	assert_null(p_none);
	assert_non_null(strstr(err, "shoal_no_such_function"));
}

static void curl_is_loaded_by_the_first_fetch(void **state)
{
	(void)state;
	assert_false(tu_mapped("libcurl.so"));
	assert_false(tu_mapped("libgnutls"));
	char *dir = tu_tmpdir();
	char path[512], url[600];
	snprintf(path, sizeof(path), "%s/x", dir);
	tu_write_file(path, "hello", 5, 0600);
	snprintf(url, sizeof(url), "file://%s", path);
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(tuf_fetch_curl(NULL, url, 100, &out, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
	assert_true(tu_mapped("libcurl.so"));
	tu_rmtree(dir);
	free(dir);
}

static json_t *no_answer(void *arg, const char *what)
{
	(void)arg;
	(void)what;
	return NULL;
}

static void microhttpd_is_loaded_by_http_start(void **state)
{
	(void)state;
	assert_false(tu_mapped("libmicrohttpd"));
	struct http_server *srv = NULL;
	char err[256] = "";
	assert_int_equal(http_start("127.0.0.1:0", no_answer, NULL, &srv, err, sizeof(err)), 0);
	assert_true(tu_mapped("libmicrohttpd"));
	assert_true(http_port(srv) != 0);
	http_stop(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(resolves_functions),
		cmocka_unit_test(missing_library_names_package),
		cmocka_unit_test(missing_symbol_clears_table),
		cmocka_unit_test(curl_is_loaded_by_the_first_fetch),
		cmocka_unit_test(microhttpd_is_loaded_by_http_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
