/*
 * control.h — the agent's control socket (DATA/control.sock) and its client.
 *
 * Protocol: one exchange per connection.
 *   client -> server   one JSON object, then '\n'  (<= SHOAL_CONTROL_REQ_BYTES_MAX)
 *                      {"cmd": "status"} ; "cmd" is [a-z0-9_-]{1,32}
 *   server -> client   one JSON object, then '\n'  (<= SHOAL_CONTROL_RESP_BYTES_MAX)
 *                      the handler's reply, or {"error": "..."}
 *   server closes.
 *
 * The socket is mode 0600 and peers must have our uid (or be root). At most
 * SHOAL_CONTROL_CLIENTS_MAX exchanges run at once (more are closed at once);
 * each must finish within SHOAL_CONTROL_CLIENT_TIMEOUT_MS.
 *
 * The process must ignore SIGPIPE: a client that hangs up before reading
 * its reply would otherwise kill the agent when libuv writes to it.
 */
#ifndef SHOAL_RUNTIME_CONTROL_H
#define SHOAL_RUNTIME_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "shoal/error.h"

#define CONTROL_SOCK_FILE "control.sock"

/* Called once per valid request, on the loop thread. `request` is an
 * object with a string "cmd", borrowed for the call. Returns a new
 * reference to the reply object, or NULL, which the client sees as
 * {"error": "command 'CMD' failed"}. It must not call control_stop(). */
typedef json_t *(*control_handler_fn)(void *arg, const json_t *request);

struct control_server;

/* Listens on `path`. A socket file left by a dead agent is removed; if an
 * agent is listening there, or `path` exists and is not a socket, fails
 * with SHOAL_EEXIST. A lock file `path`.lock is held while serving so two
 * agents can never race for one data dir. On error nothing is left
 * registered on the loop. Returns 0, SHOAL_EINVAL (path too long),
 * SHOAL_EEXIST, SHOAL_EIO or SHOAL_ENOMEM with err set. */
int control_start(uv_loop_t *loop, const char *path, control_handler_fn fn,
		  void *arg, struct control_server **out, char *err,
		  size_t errlen) SHOAL_MUST_CHECK;

/* Stops listening, closes every client, removes the socket file and
 * releases the lock. Handles close asynchronously: the caller then runs the
 * loop so their close callbacks fire (the server frees itself then).
 * NULL is a no-op. */
void control_stop(struct control_server *srv);

/* Parses one request (without its '\n'): valid JSON, an object, with a
 * "cmd" string of 1..SHOAL_CONTROL_CMD_BYTES_MAX bytes of [a-z0-9_-].
 * Returns a new reference, or NULL with err saying what is wrong. */
json_t *control_parse_request(const char *buf, size_t len, char *err,
			      size_t errlen);

/* Writes DATA/control.sock into out; SHOAL_EINVAL if it does not fit a
 * Unix socket address (or out). */
int control_socket_path(const char *data_dir, char *out, size_t out_size);

/* Blocking client for the CLI: sends req to the agent serving data_dir and
 * returns its reply object in *resp (a new reference). A reply of the form
 * {"error": ...} is returned as is. Errors, with err set for the user:
 * SHOAL_ECONN (no agent, or it hung up), SHOAL_ETIMEDOUT (no reply within
 * SHOAL_CONTROL_REPLY_TIMEOUT_MS), SHOAL_EPROTO (bad reply), SHOAL_ETOOBIG,
 * SHOAL_EINVAL, SHOAL_ENOMEM. */
int control_request(const char *data_dir, const json_t *req, json_t **resp,
		    char *err, size_t errlen) SHOAL_MUST_CHECK;

#endif
