/*
 * cmd_demo.c — `shoal demo`: a local fleet of real agents on 127.0.0.1.
 *
 * The demo drives its own binary (/proc/self/exe), each agent a separate
 * process, in seven phases, each with a bounded wait:
 *
 *   setup     mkdtemp; `fleet create`; `release init` (3 publisher keys,
 *             threshold 2); `init --root` per node (n0 tagged canary)
 *   converge  start the agents (n1.. join n0); poll every control socket
 *             until every agent sees every agent alive
 *   crash     SIGKILL one agent; time when each other agent declares it dead
 *   rejoin    restart it with the same command line and data dir; wait
 *             until every agent sees it alive at a higher incarnation
 *   release   a target signed by 2 of the 3 publishers, published at n0;
 *             wait until every agent verified and installed it
 *   rejects   a target signed by 1 publisher (published with
 *             --allow-under-threshold) at n1, then the previous generation's
 *             metadata replayed at n2: wait until every agent rejected each,
 *             and print the reason
 *   stop      SIGTERM every agent (graceful leave); SIGKILL after a bound
 *
 * Views are read through the same control socket `shoal members` uses, so
 * the times printed are what an operator would see, to within one poll.
 * The demo only ever signals the PIDs it started. On a failure it says what
 * failed and keeps the temp dir with every agent's log; on success (or
 * Ctrl-C) it removes it unless --keep is given.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/control.h"
#include "shoal/limits.h"

extern const struct cli_command cmd_demo;

#define DEMO_NODES_DEFAULT        8
#define DEMO_NODES_MIN            3   /* a victim and two observers */
#define DEMO_NODES_MAX           32
#define DEMO_VICTIM_INDEX         3   /* n3, or the last node if fewer */
#define DEMO_PHASE_TIMEOUT_MS 30000   /* converge, detect, rejoin: each */
#define DEMO_TOOL_TIMEOUT_MS  30000   /* one `fleet create` or `init` */
#define DEMO_STOP_TIMEOUT_MS  10000   /* SIGTERM to SIGKILL */
#define DEMO_POLL_INTERVAL_MS   200   /* control-socket poll period */
#define DEMO_REAP_INTERVAL_MS    20   /* waitpid poll period */
#define DEMO_PORT_TRIES_MAX      64   /* per node, to find a UDP+TCP port */
#define DEMO_RM_DEPTH_MAX         8   /* temp tree depth removed */
#define DEMO_NAME_BYTES          16
#define DEMO_VIEW_ROWS_MAX   (2 * DEMO_NODES_MAX) /* members printed */
#define DEMO_ARGS_MAX            16

struct node {
	char name[DEMO_NAME_BYTES];
	char dir[SHOAL_PATH_BYTES_MAX];
	char log[SHOAL_PATH_BYTES_MAX];
	char bind[32];
	uint16_t port;
	pid_t pid;        /* 0 when not running */
	int status;       /* waitpid status once reaped */
};

struct demo {
	char self[SHOAL_PATH_BYTES_MAX];
	char dir[SHOAL_PATH_BYTES_MAX];
	bool keep;
	int count;
	struct node nodes[DEMO_NODES_MAX];
	char repo[SHOAL_PATH_BYTES_MAX];     /* the publishers' TUF repository */
	char good_gen[SHOAL_PATH_BYTES_MAX]; /* its generation for the good release */
	uint64_t t0_ms;
	char failure[1024];   /* first failure, empty while all is well */
};

/* Set by SIGINT, SIGTERM or SIGHUP; every wait loop checks it. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleeps ms, returning early if a stop signal arrives. */
static void nap_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	if (!stop_requested)
		nanosleep(&ts, NULL);
}

static double since_s(uint64_t t_ms)
{
	return (double)(mono_ms() - t_ms) / 1000.0;
}

/* Records the first failure (later ones are consequences) and prints it. */
static void fail(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct demo *d, const char *fmt, ...)
{
	char msg[sizeof(d->failure)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "shoal demo: FAILED: %s\n", msg);
	if (d->failure[0] == '\0')
		snprintf(d->failure, sizeof(d->failure), "%s", msg);
}

static int path_join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s/%s", a, b);
	return (n < 0 || (size_t)n >= size) ? SHOAL_ETOOBIG : 0;
}

/* --- processes -------------------------------------------------------------- */

/* Starts self with args (args[0] is the subcommand), stdout and stderr
 * appended to log, stdin from /dev/null, in its own process group so Ctrl-C
 * reaches only the demo, which then stops it in order. If the demo dies
 * without cleaning up, the kernel sends the child SIGTERM (a graceful leave).
 * Returns the PID, or -1 with the reason printed. */
static pid_t spawn(const struct demo *d, const char *const *args, const char *log)
{
	const char *argv[DEMO_ARGS_MAX + 2];
	size_t n = 0;
	argv[n++] = d->self;
	for (; args[n - 1]; n++) {
		assert(n < DEMO_ARGS_MAX + 1);
		argv[n] = args[n - 1];
	}
	argv[n] = NULL;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "shoal demo: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0)
		return pid;
	/* Child: only async-signal-safe calls until exec. */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127); /* the demo died before prctl took effect */
	signal(SIGPIPE, SIG_DFL); /* ignored dispositions survive exec */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int in = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	execv(d->self, (char *const *)argv);
	_exit(127);
}

/* Waits up to timeout_ms for pid; returns 0 with *status set, or
 * SHOAL_ETIMEDOUT (the process is still running), or SHOAL_EIO. */
static int wait_for(pid_t pid, uint64_t timeout_ms, int *status)
{
	assert(pid > 0);
	uint64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return SHOAL_EIO;
		if (mono_ms() >= deadline)
			return SHOAL_ETIMEDOUT;
		struct timespec ts = {0, DEMO_REAP_INTERVAL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void describe_status(int status, char *out, size_t size)
{
	if (WIFEXITED(status))
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "stopped (status 0x%x)", (unsigned)status);
}

/* Runs a setup command (`fleet create`, `init`) to completion. */
static int run_tool(struct demo *d, const char *what, const char *const *args)
{
	char log[SHOAL_PATH_BYTES_MAX];
	if (path_join(log, sizeof(log), d->dir, "setup.log"))
		return SHOAL_ETOOBIG;
	pid_t pid = spawn(d, args, log);
	if (pid < 0) {
		fail(d, "%s: cannot start %s", what, d->self);
		return SHOAL_EIO;
	}
	int status = 0;
	int rc = wait_for(pid, DEMO_TOOL_TIMEOUT_MS, &status);
	if (rc == SHOAL_ETIMEDOUT) {
		kill(pid, SIGKILL);
		(void)wait_for(pid, DEMO_STOP_TIMEOUT_MS, &status);
		fail(d, "%s did not finish within %d s (see %s)", what,
		     DEMO_TOOL_TIMEOUT_MS / 1000, log);
		return rc;
	}
	if (rc || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char how[96] = "could not be waited for";
		if (rc == 0)
			describe_status(status, how, sizeof(how));
		fail(d, "%s %s (see %s)", what, how, log);
		return SHOAL_EIO;
	}
	return 0;
}

static int start_agent(struct demo *d, struct node *nd, const char *join)
{
	assert(nd->pid == 0);
	const char *args[] = {"agent", "--data", nd->dir, "--bind", nd->bind,
			      join ? "--join" : NULL, join, NULL};
	nd->pid = spawn(d, args, nd->log);
	if (nd->pid < 0) {
		nd->pid = 0;
		fail(d, "cannot start the agent %s", nd->name);
		return SHOAL_EIO;
	}
	return 0;
}

/* Reaps agents that exited on their own; each is a failure. */
static int check_agents(struct demo *d)
{
	int rc = 0;
	for (int i = 0; i < d->count; i++) {
		struct node *nd = &d->nodes[i];
		if (nd->pid <= 0 || waitpid(nd->pid, &nd->status, WNOHANG) != nd->pid)
			continue;
		char how[96];
		describe_status(nd->status, how, sizeof(how));
		fail(d, "agent %s (pid %d) %s unexpectedly; its log: %s", nd->name,
		     (int)nd->pid, how, nd->log);
		nd->pid = 0;
		rc = SHOAL_ESTATE;
	}
	return rc;
}

/* SIGTERMs every running agent, waits for all (bounded), SIGKILLs the rest.
 * Returns the number that did not exit 0 on SIGTERM. */
static int stop_agents(struct demo *d, bool report)
{
	uint64_t t = mono_ms();
	int running = 0, bad = 0;
	for (int i = 0; i < d->count; i++)
		if (d->nodes[i].pid > 0) {
			kill(d->nodes[i].pid, SIGTERM);
			running++;
		}
	if (running == 0)
		return 0;
	uint64_t deadline = t + DEMO_STOP_TIMEOUT_MS;
	for (int i = 0; i < d->count; i++) {
		struct node *nd = &d->nodes[i];
		if (nd->pid <= 0)
			continue;
		uint64_t now = mono_ms();
		int rc = wait_for(nd->pid, deadline > now ? deadline - now : 0, &nd->status);
		if (rc == SHOAL_ETIMEDOUT) {
			kill(nd->pid, SIGKILL);
			(void)wait_for(nd->pid, DEMO_STOP_TIMEOUT_MS, &nd->status);
			fail(d, "agent %s did not exit within %d s of SIGTERM; killed it "
			     "(log: %s)", nd->name, DEMO_STOP_TIMEOUT_MS / 1000, nd->log);
			bad++;
		} else if (rc || !WIFEXITED(nd->status) || WEXITSTATUS(nd->status) != 0) {
			char how[96] = "could not be waited for";
			if (rc == 0)
				describe_status(nd->status, how, sizeof(how));
			fail(d, "agent %s %s after SIGTERM (log: %s)", nd->name, how, nd->log);
			bad++;
		}
		nd->pid = 0;
	}
	if (report)
		printf("t=%.1fs stopped %d agents with SIGTERM in %.1f s (%d exited 0)\n",
		       since_s(d->t0_ms), running, since_s(t), running - bad);
	return bad;
}

/* --- setup ------------------------------------------------------------------ */

/* Finds a port free for both UDP and TCP on 127.0.0.1. The sockets stay
 * bound (fds[0..1]) so later calls cannot pick the same port; the caller
 * closes them just before starting the agents. */
static int reserve_port(int fds[2], uint16_t *port)
{
	for (int tries = 0; tries < DEMO_PORT_TRIES_MAX; tries++) {
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[0] < 0 || fds[1] < 0)
			goto next;
		if (bind(fds[0], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(fds[0], (struct sockaddr *)&sa, &len) != 0)
			goto next;
		if (bind(fds[1], (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			*port = ntohs(sa.sin_port);
			assert(*port != 0);
			return 0;
		}
next:
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		fds[0] = fds[1] = -1;
	}
	return SHOAL_EIO;
}

static int setup(struct demo *d)
{
	char fleet[SHOAL_PATH_BYTES_MAX];
	if (path_join(fleet, sizeof(fleet), d->dir, "fleet")) {
		fail(d, "temp dir path too long");
		return SHOAL_ETOOBIG;
	}
	const char *fc[] = {"fleet", "create", "--out", fleet, NULL};
	if (run_tool(d, "shoal fleet create", fc))
		return SHOAL_EIO;
	/* The publishers' repository: 3 publisher keys, threshold 2. Its
	 * first root is every node's trust anchor. */
	char root[SHOAL_PATH_BYTES_MAX];
	if (path_join(d->repo, sizeof(d->repo), d->dir, "repo") ||
	    path_join(root, sizeof(root), d->repo, "metadata/1.root.json")) {
		fail(d, "temp dir path too long");
		return SHOAL_ETOOBIG;
	}
	const char *ri[] = {"release", "init", "--repo", d->repo, "--publishers", "3",
			    "--threshold", "2", NULL};
	if (run_tool(d, "shoal release init", ri))
		return SHOAL_EIO;
	int held[DEMO_NODES_MAX][2];
	int reserved = 0, rc = 0;
	for (int i = 0; i < d->count && rc == 0; i++) {
		struct node *nd = &d->nodes[i];
		snprintf(nd->name, sizeof(nd->name), "n%d", i);
		char logname[DEMO_NAME_BYTES + 8];
		snprintf(logname, sizeof(logname), "%s.log", nd->name);
		if (path_join(nd->dir, sizeof(nd->dir), d->dir, nd->name) ||
		    path_join(nd->log, sizeof(nd->log), d->dir, logname)) {
			fail(d, "temp dir path too long");
			rc = SHOAL_ETOOBIG;
			break;
		}
		char what[64];
		snprintf(what, sizeof(what), "shoal init --name %s", nd->name);
		const char *init[] = {"init", "--data", nd->dir, "--fleet", fleet,
				      "--name", nd->name, "--root", root,
				      i == 0 ? "--tag" : NULL, "canary", NULL};
		rc = run_tool(d, what, init);
		if (rc == 0 && reserve_port(held[i], &nd->port) != 0) {
			fail(d, "no port free for both UDP and TCP on 127.0.0.1 after "
			     "%d tries", DEMO_PORT_TRIES_MAX);
			rc = SHOAL_EIO;
		}
		if (rc == 0) {
			reserved++;
			snprintf(nd->bind, sizeof(nd->bind), "127.0.0.1:%u", nd->port);
		}
	}
	for (int i = 0; i < reserved; i++) {
		close(held[i][0]);
		close(held[i][1]);
	}
	if (rc == 0)
		printf("t=%.1fs made fleet, a release repository (3 publisher keys, "
		       "threshold 2; every node trusts its root) and %d nodes in %s (n0 "
		       "tagged canary)\n", since_s(d->t0_ms), d->count, d->dir);
	return rc;
}

/* --- views ------------------------------------------------------------------ */

/* One agent's view of one member, from `members`. */
struct seen {
	bool answered;      /* the agent replied */
	int alive;          /* members it sees alive */
	const char *state;  /* the member's state, or NULL if unknown */
	long long inc;      /* its incarnation, or -1 */
};

/* Asks nd for its members; *out gets a new reference to the reply (or
 * NULL). Fills s with counts and, if who is set, that member's entry. */
static void look(const struct node *nd, const char *who, json_t **out, struct seen *s)
{
	char err[512];
	json_t *req = json_pack("{s:s}", "cmd", "members");
	json_t *resp = NULL;
	memset(s, 0, sizeof(*s));
	s->inc = -1;
	*out = NULL;
	if (!req)
		return;
	int rc = control_request(nd->dir, req, &resp, err, sizeof(err));
	json_decref(req);
	if (rc)
		return;
	const json_t *list = json_object_get(resp, "members");
	if (!json_is_array(list)) {
		json_decref(resp);
		return;
	}
	s->answered = true;
	size_t i;
	const json_t *m;
	json_array_foreach(list, i, m) {
		const char *name = json_string_value(json_object_get(m, "name"));
		const char *state = json_string_value(json_object_get(m, "state"));
		if (state && strcmp(state, "alive") == 0)
			s->alive++;
		if (who && name && strcmp(name, who) == 0) {
			s->state = state;
			json_t *inc = json_object_get(m, "incarnation");
			s->inc = json_is_integer(inc) ? json_integer_value(inc) : -1;
		}
	}
	*out = resp; /* s->state points into it */
}

/* Orders "n2" before "n10": shorter names first, then bytewise. */
static int name_cmp(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
	size_t lx = x ? strlen(x) : 0, ly = y ? strlen(y) : 0;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x ? x : "", y ? y : "");
}

/* Prints n0's view as a short table once the mesh has converged. */
static void print_view(const struct node *nd)
{
	json_t *resp;
	struct seen s;
	look(nd, NULL, &resp, &s);
	const json_t *list = json_object_get(resp, "members");
	json_t *rows[DEMO_VIEW_ROWS_MAX];
	size_t i, count = 0;
	const json_t *m;
	json_array_foreach(list, i, m) {
		if (count < DEMO_VIEW_ROWS_MAX)
			rows[count++] = (json_t *)m;
	}
	qsort(rows, count, sizeof(rows[0]), name_cmp);
	printf("  as %s sees the fleet:\n", nd->name);
	for (i = 0; i < count; i++) {
		m = rows[i];
		const char *name = json_string_value(json_object_get(m, "name"));
		const char *addr = json_string_value(json_object_get(m, "addr"));
		const char *state = json_string_value(json_object_get(m, "state"));
		json_t *inc = json_object_get(m, "incarnation");
		json_t *tags = json_object_get(m, "tags");
		char tagtext[64] = "-";
		size_t j, len = 0;
		const json_t *t;
		json_array_foreach(tags, j, t) {
			const char *tv = json_string_value(t);
			int n = snprintf(tagtext + len, sizeof(tagtext) - len, "%s%s",
					 j ? "," : "", tv ? tv : "?");
			if (n < 0 || (size_t)n >= sizeof(tagtext) - len)
				break;
			len += (size_t)n;
		}
		printf("    %-4s %-21s %-7s inc=%-3lld tags=%s\n", name ? name : "?",
		       addr ? addr : "?", state ? state : "?",
		       json_is_integer(inc) ? (long long)json_integer_value(inc) : -1LL,
		       tagtext);
	}
	json_decref(resp);
}

/* --- phases ----------------------------------------------------------------- */

static int converge(struct demo *d)
{
	uint64_t t = mono_ms(), deadline = t + DEMO_PHASE_TIMEOUT_MS;
	/* The seed first: agents that find no one at their seed only retry
	 * after the agent's rejoin interval, which would slow the demo. */
	if (start_agent(d, &d->nodes[0], NULL))
		return SHOAL_EIO;
	for (;;) {
		json_t *resp;
		struct seen s;
		look(&d->nodes[0], NULL, &resp, &s);
		json_decref(resp);
		if (s.answered)
			break;
		if (check_agents(d) || stop_requested)
			return SHOAL_ESTATE;
		if (mono_ms() >= deadline) {
			fail(d, "the seed n0 did not answer on its control socket within %d s "
			     "(log: %s)", DEMO_PHASE_TIMEOUT_MS / 1000, d->nodes[0].log);
			return SHOAL_ETIMEDOUT;
		}
		nap_ms(DEMO_REAP_INTERVAL_MS);
	}
	for (int i = 1; i < d->count; i++)
		if (start_agent(d, &d->nodes[i], d->nodes[0].bind))
			return SHOAL_EIO;
	printf("t=%.1fs started %d agents on 127.0.0.1 (n0 first; n1..n%d join it at "
	       "%s)\n", since_s(d->t0_ms), d->count, d->count - 1, d->nodes[0].bind);
	int last_up = -1, last_full = -1;
	while (!stop_requested) {
		if (check_agents(d))
			return SHOAL_ESTATE;
		int up = 0, full = 0, min_alive = d->count;
		for (int i = 0; i < d->count; i++) {
			json_t *resp;
			struct seen s;
			look(&d->nodes[i], NULL, &resp, &s);
			json_decref(resp);
			if (s.answered)
				up++;
			if (s.alive == d->count)
				full++;
			if (s.alive < min_alive)
				min_alive = s.alive;
		}
		if (full == d->count) {
			printf("t=%.1fs converged: %d/%d agents see %d alive (%.1f s after start)\n",
			       since_s(d->t0_ms), full, d->count, d->count, since_s(t));
			print_view(&d->nodes[0]);
			return 0;
		}
		if (up != last_up || full != last_full)
			printf("t=%.1fs %d/%d agents answering, %d/%d see all %d alive\n",
			       since_s(d->t0_ms), up, d->count, full, d->count, d->count);
		last_up = up;
		last_full = full;
		if (mono_ms() >= deadline) {
			fail(d, "the mesh did not converge within %d s: %d/%d agents answer, "
			     "%d see all %d alive, the least sees %d", DEMO_PHASE_TIMEOUT_MS / 1000,
			     up, d->count, full, d->count, min_alive);
			return SHOAL_ETIMEDOUT;
		}
		nap_ms(DEMO_POLL_INTERVAL_MS);
	}
	return SHOAL_ESTATE;
}

/* Incarnation of who as n0 (or the first other live agent) sees it. */
static long long incarnation_of(struct demo *d, const struct node *who)
{
	for (int i = 0; i < d->count; i++) {
		if (&d->nodes[i] == who || d->nodes[i].pid <= 0)
			continue;
		json_t *resp;
		struct seen s;
		look(&d->nodes[i], who->name, &resp, &s);
		json_decref(resp);
		if (s.answered)
			return s.inc;
	}
	return -1;
}

static void print_spread(const char *what, const struct node *v, int got, int want,
			 const int64_t *at_ms, int count)
{
	int64_t first = -1, last = -1;
	for (int i = 0; i < count; i++) {
		if (at_ms[i] < 0)
			continue;
		if (first < 0 || at_ms[i] < first)
			first = at_ms[i];
		if (at_ms[i] > last)
			last = at_ms[i];
	}
	if (got == 0)
		printf("%s %s by 0/%d agents\n", v->name, what, want);
	else
		printf("%s %s by %d/%d agents: first %.1f s, last %.1f s\n", v->name, what,
		       got, want, (double)first / 1000.0, (double)last / 1000.0);
}

static int crash(struct demo *d, struct node *v, long long *inc_before)
{
	*inc_before = incarnation_of(d, v);
	printf("t=%.1fs SIGKILL %s (pid %d, incarnation %lld)\n", since_s(d->t0_ms),
	       v->name, (int)v->pid, *inc_before);
	kill(v->pid, SIGKILL);
	uint64_t t = mono_ms(), deadline = t + DEMO_PHASE_TIMEOUT_MS;
	if (wait_for(v->pid, DEMO_STOP_TIMEOUT_MS, &v->status) != 0) {
		fail(d, "%s (pid %d) did not die on SIGKILL", v->name, (int)v->pid);
		return SHOAL_ESTATE;
	}
	v->pid = 0;
	int64_t suspect_ms[DEMO_NODES_MAX], dead_ms[DEMO_NODES_MAX];
	int observers = 0, dead = 0, suspected = 0;
	for (int i = 0; i < d->count; i++) {
		suspect_ms[i] = dead_ms[i] = -1;
		if (&d->nodes[i] != v)
			observers++;
	}
	while (!stop_requested && dead < observers) {
		if (check_agents(d))
			return SHOAL_ESTATE;
		for (int i = 0; i < d->count; i++) {
			struct node *o = &d->nodes[i];
			if (o == v || dead_ms[i] >= 0)
				continue;
			json_t *resp;
			struct seen s;
			look(o, v->name, &resp, &s);
			int64_t at = (int64_t)(mono_ms() - t);
			if (s.state && strcmp(s.state, "suspect") == 0 && suspect_ms[i] < 0) {
				suspect_ms[i] = at;
				suspected++;
			}
			if (s.state && strcmp(s.state, "dead") == 0) {
				dead_ms[i] = at;
				dead++;
				printf("  +%.1fs %s declares %s dead\n", (double)at / 1000.0,
				       o->name, v->name);
			} else if (s.state && strcmp(s.state, "left") == 0) {
				json_decref(resp);
				fail(d, "%s sees the SIGKILLed %s as 'left', not dead "
				     "(log: %s)", o->name, v->name, o->log);
				return SHOAL_ESTATE;
			}
			json_decref(resp);
		}
		if (dead < observers && mono_ms() >= deadline)
			break;
		if (dead < observers)
			nap_ms(DEMO_POLL_INTERVAL_MS);
	}
	if (stop_requested)
		return SHOAL_ESTATE;
	print_spread("suspected (before dead)", v, suspected, observers, suspect_ms, d->count);
	print_spread("declared dead", v, dead, observers, dead_ms, d->count);
	if (dead < observers) {
		for (int i = 0; i < d->count; i++)
			if (&d->nodes[i] != v && dead_ms[i] < 0)
				fprintf(stderr, "  %s never declared %s dead (log: %s)\n",
					d->nodes[i].name, v->name, d->nodes[i].log);
		fail(d, "%d/%d agents declared %s dead within %d s", dead, observers,
		     v->name, DEMO_PHASE_TIMEOUT_MS / 1000);
		return SHOAL_ETIMEDOUT;
	}
	return 0;
}

static int rejoin(struct demo *d, struct node *v, long long inc_before)
{
	FILE *f = fopen(v->log, "a");
	if (f) {
		fprintf(f, "# --- shoal demo: restarting %s after SIGKILL ---\n", v->name);
		fclose(f);
	}
	/* The same command line as before, as a service manager would run it. */
	assert(v != &d->nodes[0]);
	if (start_agent(d, v, d->nodes[0].bind))
		return SHOAL_EIO;
	printf("t=%.1fs restarted %s with the same command line and data dir "
	       "(its incarnation was %lld)\n", since_s(d->t0_ms), v->name, inc_before);
	uint64_t t = mono_ms(), deadline = t + DEMO_PHASE_TIMEOUT_MS;
	int64_t back_ms[DEMO_NODES_MAX];
	long long inc_seen[DEMO_NODES_MAX];
	int back = 0;
	for (int i = 0; i < d->count; i++) {
		back_ms[i] = -1;
		inc_seen[i] = -1;
	}
	while (!stop_requested && back < d->count) {
		if (check_agents(d))
			return SHOAL_ESTATE;
		for (int i = 0; i < d->count; i++) {
			struct node *o = &d->nodes[i];
			if (back_ms[i] >= 0)
				continue;
			json_t *resp;
			struct seen s;
			look(o, v->name, &resp, &s);
			inc_seen[i] = s.inc;
			if (s.state && strcmp(s.state, "alive") == 0 && s.inc > inc_before) {
				back_ms[i] = (int64_t)(mono_ms() - t);
				back++;
				printf("  +%.1fs %s sees %s alive at incarnation %lld\n",
				       (double)back_ms[i] / 1000.0, o->name, v->name, s.inc);
			}
			json_decref(resp);
		}
		if (back < d->count && mono_ms() >= deadline)
			break;
		if (back < d->count)
			nap_ms(DEMO_POLL_INTERVAL_MS);
	}
	if (stop_requested)
		return SHOAL_ESTATE;
	if (back < d->count) {
		for (int i = 0; i < d->count; i++)
			if (back_ms[i] < 0)
				fprintf(stderr, "  %s does not see %s alive above incarnation "
					"%lld (it sees incarnation %lld; log: %s)\n",
					d->nodes[i].name, v->name, inc_before, inc_seen[i],
					d->nodes[i].log);
		fail(d, "%d/%d agents saw %s rejoin within %d s", back, d->count, v->name,
		     DEMO_PHASE_TIMEOUT_MS / 1000);
		return SHOAL_ETIMEDOUT;
	}
	printf("%s rejoined: %d/%d agents see it alive (incarnation %lld, was %lld), "
	       "all within %.1f s\n", v->name, back, d->count, inc_seen[0], inc_before,
	       since_s(t));
	return 0;
}

/* --- releases --------------------------------------------------------------- */

/* Asks nd's control socket; a new reference to the reply, or NULL. */
static json_t *ask(const struct node *nd, json_t *req)
{
	char err[512];
	json_t *resp = NULL;
	if (!req)
		return NULL;
	int rc = control_request(nd->dir, req, &resp, err, sizeof(err));
	json_decref(req);
	return rc ? NULL : resp;
}

/* nd's row for the announce (author id hex, seq), or NULL; *keep owns it. */
static const json_t *release_row(const struct node *nd, const char *author, long long seq,
				 json_t **keep)
{
	*keep = ask(nd, json_pack("{s:s}", "cmd", "releases"));
	size_t i;
	const json_t *row;
	json_array_foreach(json_object_get(*keep, "releases"), i, row) {
		const char *by = json_string_value(json_object_get(row, "announced_by"));
		if (by && strcmp(by, author) == 0 &&
		    json_integer_value(json_object_get(row, "announce_seq")) == seq)
			return row;
	}
	return NULL;
}

static const char *row_str(const json_t *row, const char *key)
{
	const char *s = json_string_value(json_object_get(row, key));
	return s ? s : "";
}

/* Hands repo (absolute) to agent `at` as `shoal release publish --data`
 * would; fills its node id and the announce's seq. */
static int publish_at(struct demo *d, const struct node *at, const char *repo,
		      char id[2 * SHOAL_NODE_ID_BYTES + 1], long long *seq)
{
	json_t *st = ask(at, json_pack("{s:s}", "cmd", "status"));
	const char *sid = json_string_value(json_object_get(st, "id"));
	if (!sid || strlen(sid) != 2 * SHOAL_NODE_ID_BYTES) {
		json_decref(st);
		fail(d, "%s did not report its id", at->name);
		return SHOAL_EIO;
	}
	memcpy(id, sid, 2 * SHOAL_NODE_ID_BYTES + 1);
	json_decref(st);
	json_t *r = ask(at, json_pack("{s:s, s:s}", "cmd", "publish", "repo", repo));
	json_t *s = json_object_get(r, "announce_seq");
	if (!json_is_integer(s)) {
		const char *why = json_string_value(json_object_get(r, "error"));
		fail(d, "publishing %s at %s: %s", repo, at->name, why ? why : "no reply");
		json_decref(r);
		return SHOAL_EIO;
	}
	*seq = json_integer_value(s);
	json_decref(r);
	return 0;
}

/* Polls every agent until each shows the announce in state want; prints
 * each agent's time and, for a rejection, the reason n0 gives. */
static int await_release(struct demo *d, const char *what, const char *id, long long seq,
			 const char *want)
{
	uint64_t t = mono_ms(), deadline = t + DEMO_PHASE_TIMEOUT_MS;
	int64_t at_ms[DEMO_NODES_MAX];
	char last[DEMO_NODES_MAX][32];
	int done = 0;
	for (int i = 0; i < d->count; i++) {
		at_ms[i] = -1;
		snprintf(last[i], sizeof(last[i]), "unknown");
	}
	char reason[600] = "", version[32] = "?";
	while (!stop_requested && done < d->count) {
		if (check_agents(d))
			return SHOAL_ESTATE;
		for (int i = 0; i < d->count; i++) {
			if (at_ms[i] >= 0)
				continue;
			json_t *keep;
			const json_t *row = release_row(&d->nodes[i], id, seq, &keep);
			const char *state = row_str(row, "state");
			if (row)
				snprintf(last[i], sizeof(last[i]), "%s", state);
			if (row && strcmp(state, want) == 0) {
				at_ms[i] = (int64_t)(mono_ms() - t);
				done++;
				snprintf(version, sizeof(version), "%lld",
					 (long long)json_integer_value(
						 json_object_get(row, "version")));
				if (!reason[0])
					snprintf(reason, sizeof(reason), "%s",
						 row_str(row, "reason"));
				printf("  +%.1fs %s: %s\n", (double)at_ms[i] / 1000.0,
				       d->nodes[i].name, want);
			} else if (row && strcmp(state, "announced") != 0 &&
				   strcmp(state, "fetching") != 0 && strcmp(state, want) != 0) {
				fail(d, "%s: %s shows it %s (%s), not %s", what, d->nodes[i].name,
				     state, row_str(row, "reason"), want);
				json_decref(keep);
				return SHOAL_ESTATE;
			}
			json_decref(keep);
		}
		if (done < d->count && mono_ms() >= deadline)
			break;
		if (done < d->count)
			nap_ms(DEMO_POLL_INTERVAL_MS);
	}
	if (stop_requested)
		return SHOAL_ESTATE;
	if (done < d->count) {
		for (int i = 0; i < d->count; i++)
			if (at_ms[i] < 0)
				fprintf(stderr, "  %s: %s (log: %s)\n", d->nodes[i].name, last[i],
					d->nodes[i].log);
		fail(d, "%s: %d/%d agents show it %s within %d s", what, done, d->count, want,
		     DEMO_PHASE_TIMEOUT_MS / 1000);
		return SHOAL_ETIMEDOUT;
	}
	printf("%s: %s by %d/%d agents within %.1f s (targets version %s)\n", what, want, done,
	       d->count, since_s(t), version);
	if (reason[0])
		printf("  reason: %s\n", reason);
	return 0;
}

/* Writes a small file of text into the demo dir. */
static int write_text(struct demo *d, const char *name, const char *text, char *path,
		      size_t size)
{
	if (path_join(path, size, d->dir, name)) {
		fail(d, "temp dir path too long");
		return SHOAL_ETOOBIG;
	}
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		fail(d, "cannot write %s: %s", path, strerror(errno));
		return SHOAL_EIO;
	}
	return 0;
}

/* A release signed by 2 of the 3 publishers, published at n0, reaches and
 * is verified by every agent; each installs the target. */
static int release_good(struct demo *d)
{
	char file[SHOAL_PATH_BYTES_MAX], key1[SHOAL_PATH_BYTES_MAX], key2[SHOAL_PATH_BYTES_MAX];
	if (write_text(d, "demo.yar",
		       "rule shoal_demo { strings: $a = \"shoal-demo-marker\" condition: $a }\n",
		       file, sizeof(file)) ||
	    path_join(key1, sizeof(key1), d->repo, "keys/publisher-1.key") ||
	    path_join(key2, sizeof(key2), d->repo, "keys/publisher-2.key"))
		return SHOAL_EIO;
	const char *add[] = {"release", "add", "--repo", d->repo, file, "--name", "rules/demo.yar",
			     NULL};
	const char *sign1[] = {"release", "sign", "--repo", d->repo, "--key", key1, NULL};
	const char *sign2[] = {"release", "sign", "--repo", d->repo, "--key", key2, NULL};
	const char *pub[] = {"release", "publish", "--repo", d->repo, NULL};
	if (run_tool(d, "shoal release add", add) ||
	    run_tool(d, "shoal release sign (publisher 1)", sign1) ||
	    run_tool(d, "shoal release sign (publisher 2)", sign2) ||
	    run_tool(d, "shoal release publish", pub))
		return SHOAL_EIO;
	/* The generation a replay will serve later. */
	char link[SHOAL_PATH_BYTES_MAX];
	if (path_join(link, sizeof(link), d->repo, "metadata"))
		return SHOAL_ETOOBIG;
	ssize_t n = readlink(link, d->good_gen, sizeof(d->good_gen) - 1);
	if (n <= 0 || (size_t)n >= sizeof(d->good_gen) - 1) {
		fail(d, "cannot read %s: %s", link, n < 0 ? strerror(errno) : "too long");
		return SHOAL_EIO;
	}
	d->good_gen[n] = '\0';
	char id[2 * SHOAL_NODE_ID_BYTES + 1];
	long long seq;
	if (publish_at(d, &d->nodes[0], d->repo, id, &seq))
		return SHOAL_EIO;
	printf("t=%.1fs release rules/demo.yar signed by publishers 1 and 2 (threshold 2 of 3), "
	       "published at n0\n", since_s(d->t0_ms));
	int rc = await_release(d, "the 2-of-3 release", id, seq, "verified");
	if (rc)
		return rc;
	/* What every agent installed, and how many holders n0 counts (from
	 * the health records the others gossip). */
	json_t *keep;
	const json_t *row = release_row(&d->nodes[0], id, seq, &keep);
	long long version = (long long)json_integer_value(json_object_get(row, "version"));
	long long holders = (long long)json_integer_value(json_object_get(row, "holders"));
	json_decref(keep);
	int installed = 0;
	for (int i = 0; i < d->count; i++) {
		char p[SHOAL_PATH_BYTES_MAX];
		int len = snprintf(p, sizeof(p), "%s/releases/%lld/rules%%2Fdemo.yar",
				   d->nodes[i].dir, version);
		if (len > 0 && (size_t)len < sizeof(p) && access(p, R_OK) == 0)
			installed++;
	}
	printf("  installed as DATA/releases/%lld/rules%%2Fdemo.yar on %d/%d agents; n0 counts "
	       "%lld holders so far\n", version, installed, d->count, holders);
	if (installed != d->count) {
		fail(d, "the verified release is installed on %d/%d agents", installed, d->count);
		return SHOAL_ESTATE;
	}
	return 0;
}

/* A release signed by one publisher only (published anyway, as a drill),
 * then a replay of the previous, properly signed, generation: both are
 * rejected by every agent, with the TUF step that failed. */
static int release_bad(struct demo *d)
{
	char file[SHOAL_PATH_BYTES_MAX], key3[SHOAL_PATH_BYTES_MAX];
	if (write_text(d, "demo2.yar", "rule shoal_demo_two { condition: false }\n", file,
		       sizeof(file)) ||
	    path_join(key3, sizeof(key3), d->repo, "keys/publisher-3.key"))
		return SHOAL_EIO;
	const char *add[] = {"release", "add", "--repo", d->repo, file, "--name",
			     "rules/demo2.yar", NULL};
	const char *sign3[] = {"release", "sign", "--repo", d->repo, "--key", key3, NULL};
	const char *pub[] = {"release", "publish", "--repo", d->repo, "--allow-under-threshold",
			     NULL};
	if (run_tool(d, "shoal release add", add) ||
	    run_tool(d, "shoal release sign (publisher 3)", sign3) ||
	    run_tool(d, "shoal release publish --allow-under-threshold", pub))
		return SHOAL_EIO;
	char id[2 * SHOAL_NODE_ID_BYTES + 1];
	long long seq;
	if (publish_at(d, &d->nodes[1], d->repo, id, &seq))
		return SHOAL_EIO;
	printf("t=%.1fs release rules/demo2.yar signed by publisher 3 only, published at n1\n",
	       since_s(d->t0_ms));
	int rc = await_release(d, "the 1-key release", id, seq, "rejected");
	if (rc)
		return rc;
	/* A mirror (or an attacker) serving the older, validly signed
	 * metadata again: metadata/ points at the previous generation. */
	char replay[SHOAL_PATH_BYTES_MAX], p[SHOAL_PATH_BYTES_MAX], to[SHOAL_PATH_BYTES_MAX];
	if (path_join(replay, sizeof(replay), d->dir, "replay") || mkdir(replay, 0700) != 0 ||
	    path_join(p, sizeof(p), replay, "metadata") ||
	    path_join(to, sizeof(to), d->repo, d->good_gen) || symlink(to, p) != 0 ||
	    path_join(p, sizeof(p), replay, "targets") ||
	    path_join(to, sizeof(to), d->repo, "targets") || symlink(to, p) != 0) {
		fail(d, "cannot lay out the replayed repository in %s: %s", replay,
		     strerror(errno));
		return SHOAL_EIO;
	}
	if (publish_at(d, &d->nodes[2], replay, id, &seq))
		return SHOAL_EIO;
	printf("t=%.1fs the earlier 2-of-3 release replayed at n2 (its old signed metadata)\n",
	       since_s(d->t0_ms));
	return await_release(d, "the replayed older release", id, seq, "rejected");
}

/* --- cleanup ---------------------------------------------------------------- */

/* Removes the tree under dirfd/name without following symlinks. */
static int rm_tree_at(int dirfd, const char *name, int depth)
{
	if (unlinkat(dirfd, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return errno == ENOENT ? 0 : SHOAL_EIO;
	if (depth >= DEMO_RM_DEPTH_MAX)
		return SHOAL_ETOOBIG;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return SHOAL_EIO;
	DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return SHOAL_EIO;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (rm_tree_at(fd, e->d_name, depth + 1) != 0)
			rc = SHOAL_EIO;
	}
	closedir(dir);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) != 0)
		rc = SHOAL_EIO;
	return rc;
}

static int finish(struct demo *d, int phase_rc)
{
	bool interrupted = stop_requested;
	int bad = stop_agents(d, phase_rc == 0 && !interrupted);
	bool ok = phase_rc == 0 && bad == 0 && !interrupted && d->failure[0] == '\0';
	if (interrupted)
		printf("interrupted: stopped every agent the demo started\n");
	if (!ok && !interrupted) {
		if (d->failure[0] == '\0')
			fprintf(stderr, "shoal demo: FAILED: a step did not complete\n");
		fprintf(stderr, "shoal demo: kept %s; agent logs are %s/n*.log, setup "
			"output %s/setup.log\n", d->dir, d->dir, d->dir);
	} else if (d->keep) {
		printf("kept %s (agent logs: %s/n*.log)\n", d->dir, d->dir);
	} else if (rm_tree_at(AT_FDCWD, d->dir, 0) != 0) {
		fprintf(stderr, "shoal demo: could not remove all of %s\n", d->dir);
		ok = false;
	} else {
		printf("removed %s\n", d->dir);
	}
	if (ok)
		printf("t=%.1fs demo complete: every step succeeded\n", since_s(d->t0_ms));
	return interrupted ? 130 : ok ? 0 : 1;
}

static int run_demo(int argc, char **argv)
{
	static struct demo d; /* large; one per process */
	memset(&d, 0, sizeof(d));
	d.count = DEMO_NODES_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--keep") == 0) {
			d.keep = true;
		} else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end || n < DEMO_NODES_MIN || n > DEMO_NODES_MAX)
				return cli_usage(&cmd_demo, "--nodes takes %d..%d",
						 DEMO_NODES_MIN, DEMO_NODES_MAX);
			d.count = (int)n;
		} else {
			return cli_usage(&cmd_demo, "unknown argument '%s'", argv[i]);
		}
	}
	ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);
	if (n <= 0 || (size_t)n >= sizeof(d.self) - 1)
		return cli_fail("demo", "cannot find my own binary: readlink(/proc/self/exe): %s",
				n < 0 ? strerror(errno) : "path too long");
	d.self[n] = '\0';
	const char *tmp = getenv("TMPDIR");
	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
	int len = snprintf(d.dir, sizeof(d.dir), "%s/shoal-demo.XXXXXX", tmp);
	if (len < 0 || (size_t)len >= sizeof(d.dir) || !mkdtemp(d.dir))
		return cli_fail("demo", "mkdtemp(%s/shoal-demo.XXXXXX): %s", tmp,
				strerror(errno));

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	d.t0_ms = mono_ms();
	int victim = d.count > DEMO_VICTIM_INDEX ? DEMO_VICTIM_INDEX : d.count - 1;
	struct node *v = &d.nodes[victim];
	long long inc_before = -1;
	printf("shoal demo: %d agents as separate processes on 127.0.0.1 (Ctrl-C stops "
	       "and cleans up)\n", d.count);
	int rc = setup(&d);
	if (rc == 0 && !stop_requested)
		rc = converge(&d);
	if (rc == 0 && !stop_requested)
		rc = crash(&d, v, &inc_before);
	if (rc == 0 && !stop_requested)
		rc = rejoin(&d, v, inc_before);
	if (rc == 0 && !stop_requested)
		rc = release_good(&d);
	if (rc == 0 && !stop_requested)
		rc = release_bad(&d);
	if (rc == 0 && !stop_requested)
		rc = check_agents(&d);
	return finish(&d, rc);
}

const struct cli_command cmd_demo = {
	"demo", "run a local fleet of agents: membership and releases at work",
	"NAME\n"
	"    shoal demo - run a local fleet of agents: membership and releases at work\n\n"
	"SYNOPSIS\n"
	"    shoal demo [--nodes N] [--keep]\n\n"
	"DESCRIPTION\n"
	"    Builds a throwaway fleet in a fresh temp dir ($TMPDIR or /tmp,\n"
	"    shoal-demo.XXXXXX) and runs it as separate `shoal agent` processes on\n"
	"    127.0.0.1, each on a free UDP+TCP port:\n"
	"      1. `shoal fleet create`; `shoal release init` (a TUF repository\n"
	"         with 3 publisher keys, threshold 2); `shoal init --root` for\n"
	"         nodes n0..n(N-1), each trusting the repository's first root;\n"
	"         n0 is tagged canary.\n"
	"      2. Starts n0, then every other agent with --join n0, and polls\n"
	"         each agent's control socket until every agent sees all N alive.\n"
	"      3. SIGKILLs n3 and prints when each other agent declares it dead.\n"
	"      4. Restarts n3 with the same command line and data dir; it comes\n"
	"         back at a higher incarnation (kept in DIR/state.db) and every\n"
	"         agent sees it alive again.\n"
	"      5. Adds rules/demo.yar, signs it with publisher keys 1 and 2,\n"
	"         publishes it at n0 and prints when each agent has verified it\n"
	"         (TUF, against its own trusted root) and installed it.\n"
	"      6. Adds rules/demo2.yar signed by publisher 3 only, publishes it at\n"
	"         n1 (--allow-under-threshold, a drill), then replays the earlier\n"
	"         release's signed metadata at n2; prints when each agent has\n"
	"         rejected each, and the reason (the TUF step that failed).\n"
	"      7. Sends SIGTERM to every agent (a graceful leave), waits for them\n"
	"         (SIGKILL after 10 s) and removes the temp dir.\n"
	"    Each phase waits at most 30 s. Times are measured by polling every\n"
	"    200 ms, as `shoal members` would see them. The demo signals only the\n"
	"    processes it started. Ctrl-C stops every agent and removes the temp\n"
	"    dir. On a failure the demo says which step failed and keeps the temp\n"
	"    dir, with each agent's log in DIR/nI.log.\n\n"
	"OPTIONS\n"
	"    --nodes N   number of agents, 3..32 (default 8); with fewer than 4\n"
	"                the last node is the one killed\n"
	"    --keep      keep the temp dir (data dirs and logs) at the end\n\n"
	"EXIT STATUS\n"
	"    0 if every step succeeded; 1 if a step failed (the temp dir is kept);\n"
	"    2 on a usage error; 130 if interrupted.\n\n"
	"EXAMPLES\n"
	"    shoal demo\n"
	"    shoal demo --nodes 12 --keep\n",
	run_demo,
};
