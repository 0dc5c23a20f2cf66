/*
 * cli.h — the `shoal` command table.
 *
 * Each command family lives in its own file (cmd_<family>.c) and exports a
 * `const struct cli_command cmd_<name>` with its handler and a man-style help
 * text (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXIT STATUS, EXAMPLES). main.c
 * lists them; `shoal help` and `shoal CMD --help` are generated from the table.
 */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <stdbool.h>

struct cli_command {
	const char *name;
	const char *summary;  /* one line for `shoal help` */
	const char *help;     /* man-style page for `shoal CMD --help` */
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

#define SHOAL_DEFAULT_DATA_DIR "/var/lib/shoal"
#define SHOAL_DEFAULT_CONFIG "/etc/shoal/shoal.conf"

/* Prints the command's help to stdout. */
void cli_print_help(const struct cli_command *cmd);
/* True if argv holds -h or --help (before any "--"). */
bool cli_wants_help(int argc, char **argv);
/* Prints "shoal CMD: message" to stderr and returns exit status 1 or 2. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]: returns 1 and sets
 * *value (NULL if the value is missing), advancing *i past it; 0 if argv[*i]
 * is another option. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value);

extern const struct cli_command *const cli_commands[];

#endif
