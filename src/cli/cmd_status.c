/*
 * cmd_status.c — `shoal status` and `shoal members`: ask the running agent
 * over its control socket and print the reply for people (or as JSON).
 *
 * The status printer is generic: top-level scalars as "key: value", nested
 * objects indented below their key, so a field the agent adds shows up
 * without a change here. Strings from the agent (some first came from other
 * nodes) are printed with control bytes replaced, so no reply can drive the
 * terminal.
 */
#include "cli/cli.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/control.h"
#include "shoal/limits.h"

extern const struct cli_command cmd_status;
extern const struct cli_command cmd_members;

#define PRINT_DEPTH_MAX 8     /* nesting printed before "{...}" */
#define CELL_BYTES_MAX 96     /* one table cell or printed value */
#define ID_PREFIX_CHARS 16    /* hex digits of a node id in the table */

struct opts {
	const char *data_dir;
	bool json;
};

/* Parses [--data DIR | --data=DIR] [--json]; returns 0 or an exit status. */
static int parse_opts(const struct cli_command *cmd, int argc, char **argv,
		      struct opts *o)
{
	o->data_dir = SHOAL_DEFAULT_DATA_DIR;
	o->json = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--data") == 0) {
			if (i + 1 >= argc)
				return cli_usage(cmd, "--data needs a directory");
			o->data_dir = argv[++i];
		} else if (strncmp(a, "--data=", 7) == 0) {
			o->data_dir = a + 7;
		} else {
			return cli_usage(cmd, "unknown argument '%s'", a);
		}
	}
	if (o->data_dir[0] == '\0')
		return cli_usage(cmd, "--data needs a directory");
	return 0;
}

/* Sends {"cmd": name}; on success *resp holds a reply without "error".
 * Returns 0 or an exit status (message printed). */
static int ask(const struct cli_command *cmd, const struct opts *o,
	       json_t **resp)
{
	char err[1024];
	json_t *req = json_pack("{s:s}", "cmd", cmd->name);
	if (!req)
		return cli_fail(cmd->name, "out of memory");
	int rc = control_request(o->data_dir, req, resp, err, sizeof(err));
	json_decref(req);
	if (rc)
		return cli_fail(cmd->name, "%s", err);
	json_t *e = json_object_get(*resp, "error");
	if (e) {
		if (o->json) {
			json_dumpf(*resp, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
		}
		cli_fail(cmd->name, "the agent replied: %s",
			 json_is_string(e) ? json_string_value(e) : "(error)");
		json_decref(*resp);
		*resp = NULL;
		return 1;
	}
	return 0;
}

static int print_json(json_t *resp)
{
	int rc = json_dumpf(resp, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	return rc == 0 ? 0 : 1;
}

/* Copies s into out (CELL_BYTES_MAX) with control bytes as '?'. */
static const char *clean(const char *s, char *out)
{
	size_t n = 0;
	for (; s[n] && n + 1 < CELL_BYTES_MAX; n++) {
		unsigned char ch = (unsigned char)s[n];
		out[n] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	out[n] = '\0';
	return out;
}

/* Formats a scalar (or an array of scalars, comma-joined) into out. */
static const char *scalar_text(const json_t *v, char *out)
{
	char tmp[CELL_BYTES_MAX];
	switch (json_typeof(v)) {
	case JSON_STRING:
		return clean(json_string_value(v), out);
	case JSON_INTEGER:
		snprintf(out, CELL_BYTES_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return out;
	case JSON_REAL:
		snprintf(out, CELL_BYTES_MAX, "%g", json_real_value(v));
		return out;
	case JSON_TRUE:
		return strcpy(out, "true");
	case JSON_FALSE:
		return strcpy(out, "false");
	case JSON_NULL:
		return strcpy(out, "-");
	case JSON_ARRAY: {
		size_t len = 0, i;
		const json_t *e;
		out[0] = '\0';
		json_array_foreach(v, i, e) {
			if (json_is_object(e) || json_is_array(e))
				return strcpy(out, "[...]");
			int n = snprintf(out + len, CELL_BYTES_MAX - len, "%s%s",
					 i ? "," : "", scalar_text(e, tmp));
			if (n < 0 || (size_t)n >= CELL_BYTES_MAX - len)
				break; /* cut at the cell bound */
			len += (size_t)n;
		}
		return len ? out : strcpy(out, "-");
	}
	default:
		return strcpy(out, "{...}");
	}
}

static void print_object(const json_t *obj, int indent, int depth)
{
	const char *key;
	const json_t *v;
	char val[CELL_BYTES_MAX], k[CELL_BYTES_MAX];
	int width = 0;
	json_object_foreach((json_t *)obj, key, v) {
		int n = (int)strlen(clean(key, k));
		if (!json_is_object(v) && n > width)
			width = n;
	}
	/* Scalars first, so the summary stays on top; then each object. */
	json_object_foreach((json_t *)obj, key, v) {
		if (json_is_object(v))
			continue;
		int pad = width - (int)strlen(clean(key, k));
		printf("%*s%s:%*s %s\n", indent, "", k, pad, "", scalar_text(v, val));
	}
	json_object_foreach((json_t *)obj, key, v) {
		if (!json_is_object(v))
			continue;
		if (depth + 1 >= PRINT_DEPTH_MAX) {
			printf("%*s%s: {...}\n", indent, "", clean(key, k));
			continue;
		}
		printf("%*s%s:%s\n", indent, "", clean(key, k),
		       json_object_size(v) ? "" : " -");
		print_object(v, indent + 2, depth + 1);
	}
}

static int run_status(int argc, char **argv)
{
	struct opts o;
	json_t *resp = NULL;
	int rc = parse_opts(&cmd_status, argc, argv, &o);
	if (rc == 0)
		rc = ask(&cmd_status, &o, &resp);
	if (rc)
		return rc;
	if (o.json)
		rc = print_json(resp);
	else
		print_object(resp, 0, 0);
	json_decref(resp);
	return rc;
}

/* --- members ---------------------------------------------------------------- */

enum { COL_NAME, COL_ID, COL_ADDR, COL_STATE, COL_INC, COL_TAGS, COL_CHANGE, COLS };
static const char *const col_titles[COLS] = {
	"NAME", "ID", "ADDRESS", "STATE", "INC", "TAGS", "LAST-CHANGE",
};

struct row {
	char cell[COLS][CELL_BYTES_MAX];
};

static void cell_from(const json_t *m, const char *key, char *out)
{
	const json_t *v = json_object_get(m, key);
	if (!v || json_is_object(v))
		strcpy(out, "-");
	else
		scalar_text(v, out);
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = strcmp(x->cell[COL_NAME], y->cell[COL_NAME]);
	return c ? c : strcmp(x->cell[COL_ID], y->cell[COL_ID]);
}

/* The last column is not padded, so lines carry no trailing blanks. */
static void print_row(const char *const cells[COLS], const int width[COLS])
{
	for (int c = 0; c + 1 < COLS; c++)
		printf("%-*s  ", width[c], cells[c]);
	printf("%s\n", cells[COLS - 1]);
}

static int print_members(const json_t *list)
{
	size_t n = json_array_size(list);
	struct row *rows = n ? calloc(n, sizeof(*rows)) : NULL;
	if (n && !rows)
		return cli_fail(cmd_members.name, "out of memory");
	int width[COLS];
	for (int c = 0; c < COLS; c++)
		width[c] = (int)strlen(col_titles[c]);
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(list, i);
		struct row *r = &rows[i];
		cell_from(m, "name", r->cell[COL_NAME]);
		cell_from(m, "id", r->cell[COL_ID]);
		r->cell[COL_ID][ID_PREFIX_CHARS] = '\0';
		cell_from(m, "addr", r->cell[COL_ADDR]);
		cell_from(m, "state", r->cell[COL_STATE]);
		cell_from(m, "incarnation", r->cell[COL_INC]);
		cell_from(m, "tags", r->cell[COL_TAGS]);
		cell_from(m, "last_change", r->cell[COL_CHANGE]);
		for (int c = 0; c < COLS; c++) {
			int w = (int)strlen(r->cell[c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	if (n > 1)
		qsort(rows, n, sizeof(*rows), row_cmp);
	print_row(col_titles, width);
	for (size_t i = 0; i < n; i++) {
		const char *cells[COLS];
		for (int c = 0; c < COLS; c++)
			cells[c] = rows[i].cell[c];
		print_row(cells, width);
	}
	free(rows);
	return 0;
}

static int run_members(int argc, char **argv)
{
	struct opts o;
	json_t *resp = NULL;
	int rc = parse_opts(&cmd_members, argc, argv, &o);
	if (rc == 0)
		rc = ask(&cmd_members, &o, &resp);
	if (rc)
		return rc;
	const json_t *list = json_object_get(resp, "members");
	if (o.json) {
		rc = print_json(resp);
	} else if (!json_is_array(list) || json_array_size(list) > SHOAL_MEMBERS_MAX) {
		rc = cli_fail(cmd_members.name,
			      "unexpected reply from the agent (no \"members\" list)");
	} else {
		rc = print_members(list);
	}
	json_decref(resp);
	return rc;
}

const struct cli_command cmd_status = {
	"status", "show the running agent's health and counters",
	"NAME\n"
	"    shoal status - show the running agent's health and counters\n\n"
	"SYNOPSIS\n"
	"    shoal status [--data DIR] [--json]\n\n"
	"DESCRIPTION\n"
	"    Asks the agent serving DIR, over its control socket DIR/control.sock,\n"
	"    for its status: name, node id, address, incarnation, Lifeguard health\n"
	"    (0 is healthy), member counts by state and the cluster size estimate\n"
	"    the protocol's timeouts scale with, uptime, event counters and\n"
	"    packet drop counters by reason. Top-level values print as\n"
	"    \"key: value\"; groups print indented below their name.\n\n"
	"OPTIONS\n"
	"    --data DIR   the agent's data dir (default " SHOAL_DEFAULT_DATA_DIR ")\n"
	"    --json       print the agent's reply as JSON\n\n"
	"EXIT STATUS\n"
	"    0 on success; 1 if no agent runs on DIR or it replied with an error;\n"
	"    2 on a usage error.\n\n"
	"EXAMPLES\n"
	"    shoal status\n"
	"    shoal status --data /srv/shoal --json | jq .health\n",
	run_status,
};

const struct cli_command cmd_members = {
	"members", "list the fleet members the agent knows",
	"NAME\n"
	"    shoal members - list the fleet members the agent knows\n\n"
	"SYNOPSIS\n"
	"    shoal members [--data DIR] [--json]\n\n"
	"DESCRIPTION\n"
	"    Asks the agent serving DIR for its membership view and prints one\n"
	"    line per member, sorted by name:\n"
	"      NAME         node name\n"
	"      ID           first 16 hex digits of the node id (its public key)\n"
	"      ADDRESS      gossip address\n"
	"      STATE        alive, suspect, dead or left\n"
	"      INC          incarnation: grows each time the node restarts or\n"
	"                   refutes a suspicion\n"
	"      TAGS         the node's tags\n"
	"      LAST-CHANGE  when this agent last saw the state change (UTC)\n\n"
	"OPTIONS\n"
	"    --data DIR   the agent's data dir (default " SHOAL_DEFAULT_DATA_DIR ")\n"
	"    --json       print the agent's reply as JSON, full ids included\n\n"
	"EXIT STATUS\n"
	"    0 on success; 1 if no agent runs on DIR or it replied with an error;\n"
	"    2 on a usage error.\n\n"
	"EXAMPLES\n"
	"    shoal members\n"
	"    shoal members --json | jq -r '.members[] | select(.state != \"alive\") | .name'\n",
	run_members,
};
