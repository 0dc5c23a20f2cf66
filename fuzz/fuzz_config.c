/*
 * fuzz_config.c — config_load_file on arbitrary file contents. The input is
 * written to a private temp file (the loader's input is a path) and loaded
 * over defaults; it must never crash, and a file it accepts must leave a
 * configuration that passes config_validate and can be printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal/config.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof path, "/tmp/shoal-fuzz-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		abort();
	close(fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shoal_config c;
	char err[512];
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	config_defaults(&c);
	if (config_load_file(&c, path, err, sizeof err) != 0)
		return 0;
	if (config_validate(&c, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_config: accepted a config that does not validate: %s\n", err);
		abort();
	}
	FILE *null = fopen("/dev/null", "w");
	if (null) {
		config_print(&c, null);
		fclose(null);
	}
	return 0;
}
