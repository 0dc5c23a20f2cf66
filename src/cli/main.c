/*
 * main.c — `shoal`, one binary with subcommands. The table below is the
 * whole command set; usage and `shoal help` are generated from it.
 */
#include "cli/cli.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shoal/log.h"

#define SHOAL_VERSION "0.1.0"

extern const struct cli_command cmd_version;
extern const struct cli_command cmd_tuf;
extern const struct cli_command cmd_status;
extern const struct cli_command cmd_members;
extern const struct cli_command cmd_releases;
extern const struct cli_command cmd_release;
extern const struct cli_command cmd_trust;
extern const struct cli_command cmd_log;
extern const struct cli_command cmd_fleet;
extern const struct cli_command cmd_init;
extern const struct cli_command cmd_agent;
extern const struct cli_command cmd_leave;
extern const struct cli_command cmd_demo;
extern const struct cli_command cmd_sim;

const struct cli_command *const cli_commands[] = {
	&cmd_init,
	&cmd_fleet,
	&cmd_agent,
	&cmd_leave,
	&cmd_status,
	&cmd_members,
	&cmd_releases,
	&cmd_release,
	&cmd_trust,
	&cmd_log,
	&cmd_tuf,
	&cmd_version,
	&cmd_demo,
	&cmd_sim,
	NULL,
};

void cli_print_help(const struct cli_command *cmd)
{
	fputs(cmd->help, stdout);
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*value = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		*value = NULL;
		return 1;
	}
	*value = argv[++*i];
	return 1;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "shoal %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "shoal %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'shoal %s --help'.\n", cmd->name);
	return 2;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: shoal COMMAND [OPTIONS]\n\n"
		   "shoal is a decentralized endpoint-security agent for Linux fleets.\n\n"
		   "Commands:\n");
	for (size_t i = 0; cli_commands[i]; i++)
		fprintf(f, "  %-12s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
	fprintf(f, "\nRun 'shoal COMMAND --help' for a command's manual.\n");
}

static int run_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("shoal %s\n", SHOAL_VERSION);
	return 0;
}

const struct cli_command cmd_version = {
	"version", "print the version",
	"NAME\n    shoal version - print the version\n\n"
	"SYNOPSIS\n    shoal version\n\n"
	"EXIT STATUS\n    0 always.\n",
	run_version,
};

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "shoal: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		if (argc >= 3) {
			for (size_t i = 0; cli_commands[i]; i++)
				if (strcmp(cli_commands[i]->name, argv[2]) == 0) {
					cli_print_help(cli_commands[i]);
					return 0;
				}
		}
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; cli_commands[i]; i++) {
		const struct cli_command *cmd = cli_commands[i];
		if (strcmp(cmd->name, argv[1]) != 0)
			continue;
		if (cli_wants_help(argc - 1, argv + 1)) {
			cli_print_help(cmd);
			return 0;
		}
		return cmd->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "shoal: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
