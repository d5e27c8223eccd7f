/* The control socket (DATA_DIR/agent.sock, 0600, peers must be root or the agent's own user).
 * One request line per connection, one answer line:
 *   GET <selector>     -> "NETNS <hosts path or ->" with the namespace fd (SCM_RIGHTS)
 *                         | "ENV <endpoint> <secret>" | "AMBIGUOUS <message>" | "ERR <message>"
 *   ROTATE <selector>  -> "OK" | "AMBIGUOUS <message>" | "ERR <message>"  (new App Service secret)
 *   MATCH <selector>   -> "OK <json array of the resource ids it matches>"
 *   STATUS             -> "OK <json>"
 * A selector names one instance: its resource id (starts with '/'), GROUP/NAME, or NAME when no
 * other instance on the host has that name (naming.c, agent_selector_matches).
 * Handing the namespace over as a file descriptor (rather than a /run/netns path) is what makes
 * `badge vm exec` work when the agent runs in a mount namespace of its own. */
#include "agent/agentint.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "core/log.h"

#define CTL_LINE_MAX 512
#define CTL_REPLY_MAX (256 * 1024)
#define CTL_IO_TIMEOUT_MS 5000

int agent_ctl_path(const char *data_dir, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/agent.sock", data_dir) >= n ||
	    strlen(out) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return BC_ERR_LIMIT;
	return BC_OK;
}

static int send_reply(int fd, const char *line, int pass_fd)
{
	struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (pass_fd >= 0) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	/* the first sendmsg carries the fd; the rest of a long line follows plainly */
	ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
	if (w < 0)
		return -1;
	size_t done = (size_t)w;
	while (done < iov.iov_len) {
		w = send(fd, line + done, iov.iov_len - done, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

static int read_line(int fd, char *buf, size_t n)
{
	size_t len = 0;
	while (len + 1 < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, CTL_IO_TIMEOUT_MS) <= 0)
			return -1;
		ssize_t r = read(fd, buf + len, 1);
		if (r <= 0)
			return -1;
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return 0;
		}
		len++;
	}
	return -1;
}

static void reply_unmatched(int fd, const char *selector, size_t matches)
{
	char line[CTL_LINE_MAX + 128];
	if (matches)
		snprintf(line, sizeof(line), "AMBIGUOUS %zu instances on this host match %s\n", matches, selector);
	else
		snprintf(line, sizeof(line), "ERR no such instance on this host\n");
	send_reply(fd, line, -1);
}

static void serve_get(struct agent *a, int fd, const char *selector)
{
	char line[PATH_MAX + 64];
	size_t matches;
	struct agent_instance *in = agent_instance_lock(a, selector, &matches);
	if (!in) {
		reply_unmatched(fd, selector, matches);
		return;
	}
	int nsfd = -1;
	if (in->netns && in->nsfd >= 0) {
		nsfd = dup(in->nsfd);
		snprintf(line, sizeof(line), "NETNS %s\n", in->hosts_path[0] ? in->hosts_path : "-");
	} else {
		snprintf(line, sizeof(line), "ENV http://127.0.0.1:%d/msi/token %s\n", in->port, in->secret);
	}
	pthread_mutex_unlock(&a->mu);
	if (in->netns && nsfd < 0)
		send_reply(fd, "ERR cannot duplicate the namespace descriptor\n", -1);
	else
		send_reply(fd, line, nsfd);
	if (nsfd >= 0)
		close(nsfd);
	explicit_bzero(line, sizeof(line));
}

static void serve_one(struct agent *a, int fd)
{
	char line[CTL_LINE_MAX];
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || (cred.uid != 0 && cred.uid != geteuid())) {
		send_reply(fd, "ERR permission denied\n", -1);
		return;
	}
	if (read_line(fd, line, sizeof(line)) != 0)
		return;
	if (!strncmp(line, "GET ", 4)) {
		serve_get(a, fd, line + 4);
	} else if (!strncmp(line, "ROTATE ", 7)) {
		struct bc_error err = {0};
		if (agent_rotate_secret(a, line + 7, &err) == BC_OK)
			send_reply(fd, "OK\n", -1);
		else {
			char r[BC_ERROR_MSG_MAX + 16];
			snprintf(r, sizeof(r), "%s %s\n", err.status == BC_ERR_CONFLICT ? "AMBIGUOUS" : "ERR", err.msg);
			send_reply(fd, r, -1);
		}
	} else if (!strcmp(line, "STATUS") || !strncmp(line, "MATCH ", 6)) {
		json_t *st = line[0] == 'S' ? agent_status_json(a) : agent_instance_matches(a, line + 6);
		char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
		json_decref(st);
		struct bc_buf b = {0};
		if (text && bc_buf_appendf(&b, "OK %s\n", text) == BC_OK)
			send_reply(fd, b.data, -1);
		else
			send_reply(fd, "ERR out of memory\n", -1);
		bc_buf_release(&b);
		free(text);
	} else {
		send_reply(fd, "ERR unknown request\n", -1);
	}
}

static void *ctl_thread(void *arg)
{
	struct agent *a = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = a->ctl_fd, .events = POLLIN}, {.fd = a->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(a->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(a, fd);
		close(fd);
	}
	return NULL;
}

int agent_ctl_start(struct agent *a, struct bc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (agent_ctl_path(a->dir, sa.sun_path, sizeof(sa.sun_path)))
		return bc_error_set(err, BC_ERR_LIMIT, "data dir path too long for a unix socket");
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bc_error_set(err, BC_ERR_IO, "socket: %s", strerror(errno));
	mode_t old = umask(077);
	int b = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (b != 0 || listen(fd, 16) != 0) {
		int e = errno;
		close(fd);
		return bc_error_set(err, BC_ERR_IO, "cannot listen on %s: %s", sa.sun_path, strerror(e));
	}
	a->ctl_fd = fd;
	if (pthread_create(&a->ctl_thread, NULL, ctl_thread, a) != 0) {
		close(fd);
		a->ctl_fd = -1;
		return bc_error_set(err, BC_ERR_NOMEM, "cannot start the control thread");
	}
	a->ctl_running = true;
	return BC_OK;
}

void agent_ctl_stop(struct agent *a)
{
	if (a->ctl_running) {
		pthread_join(a->ctl_thread, NULL);
		a->ctl_running = false;
	}
	if (a->ctl_fd >= 0) {
		char path[PATH_MAX];
		close(a->ctl_fd);
		a->ctl_fd = -1;
		if (agent_ctl_path(a->dir, path, sizeof(path)) == BC_OK)
			unlink(path);
	}
}

/* Client side. */

static int ctl_connect(const char *sock_path, struct bc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return bc_error_set(err, BC_ERR_LIMIT, "socket path too long"), -1;
	strcpy(sa.sun_path, sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		bc_error_set(err, BC_ERR_UNAVAILABLE, "cannot reach the agent at %s: %s", sock_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends req, reads the whole answer (until EOF), and the fd passed with it if any. */
static int ctl_request(const char *sock_path, const char *req, struct bc_buf *reply, int *passed,
		       struct bc_error *err)
{
	int fd = ctl_connect(sock_path, err);
	if (fd < 0)
		return err ? err->status : BC_ERR_UNAVAILABLE;
	if (passed)
		*passed = -1;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		close(fd);
		return bc_error_set(err, BC_ERR_IO, "cannot talk to the agent: %s", strerror(errno));
	}
	bc_buf_init(reply, CTL_REPLY_MAX);
	for (;;) {
		char chunk[4096];
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = {.iov_base = chunk, .iov_len = sizeof(chunk)};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, CTL_IO_TIMEOUT_MS) <= 0)
			break;
		ssize_t r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
		if (r <= 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int got;
				memcpy(&got, CMSG_DATA(c), sizeof(int));
				if (passed && *passed < 0)
					*passed = got;
				else
					close(got);
			}
		if (bc_buf_append(reply, chunk, (size_t)r) != BC_OK)
			break;
		if (memchr(chunk, '\n', (size_t)r))
			break;
	}
	close(fd);
	char *nl = reply->data ? strchr(reply->data, '\n') : NULL;
	if (!nl) {
		bc_buf_release(reply);
		if (passed && *passed >= 0)
			close(*passed);
		return bc_error_set(err, BC_ERR_IO, "no answer from the agent");
	}
	*nl = '\0';
	int st = !strncmp(reply->data, "ERR ", 4) ? BC_ERR_NOT_FOUND
		 : !strncmp(reply->data, "AMBIGUOUS ", 10) ? BC_ERR_CONFLICT : BC_OK;
	if (st != BC_OK) {
		bc_error_set(err, st, "agent: %s", strchr(reply->data, ' ') + 1);
		bc_buf_release(reply);
		if (passed && *passed >= 0)
			close(*passed);
	}
	return st;
}

int agent_ctl_get(const char *sock_path, const char *instance, struct agent_exec_info *out, struct bc_error *err)
{
	char req[CTL_LINE_MAX];
	struct bc_buf reply;
	int fd = -1;
	if (strchr(instance, '\n') || (size_t)snprintf(req, sizeof(req), "GET %s\n", instance) >= sizeof(req))
		return bc_error_set(err, BC_ERR_INVALID, "bad instance name");
	int rc = ctl_request(sock_path, req, &reply, &fd, err);
	if (rc != BC_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!strncmp(reply.data, "NETNS ", 6) && fd >= 0) {
		out->netns = true;
		out->fd = fd;
		if (strcmp(reply.data + 6, "-") != 0)
			snprintf(out->hosts_path, sizeof(out->hosts_path), "%s", reply.data + 6);
	} else if (!strncmp(reply.data, "ENV ", 4) &&
		   sscanf(reply.data + 4, "%255s %79s", out->endpoint, out->secret) == 2) {
		if (fd >= 0)
			close(fd);
	} else {
		if (fd >= 0)
			close(fd);
		rc = bc_error_set(err, BC_ERR_IO, "unexpected answer from the agent");
	}
	bc_buf_wipe(&reply);
	return rc;
}

int agent_ctl_rotate(const char *sock_path, const char *instance, struct bc_error *err)
{
	char req[CTL_LINE_MAX];
	struct bc_buf reply;
	if (strchr(instance, '\n') || (size_t)snprintf(req, sizeof(req), "ROTATE %s\n", instance) >= sizeof(req))
		return bc_error_set(err, BC_ERR_INVALID, "bad instance name");
	int rc = ctl_request(sock_path, req, &reply, NULL, err);
	if (rc == BC_OK)
		bc_buf_release(&reply);
	return rc;
}

static int ctl_json(const char *sock_path, const char *req, char **json_out, struct bc_error *err)
{
	struct bc_buf reply;
	int rc = ctl_request(sock_path, req, &reply, NULL, err);
	if (rc != BC_OK)
		return rc;
	if (strncmp(reply.data, "OK ", 3) != 0) {
		bc_buf_release(&reply);
		return bc_error_set(err, BC_ERR_IO, "unexpected answer from the agent");
	}
	*json_out = strdup(reply.data + 3);
	bc_buf_release(&reply);
	return *json_out ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
}

int agent_ctl_status(const char *sock_path, char **json_out, struct bc_error *err)
{
	return ctl_json(sock_path, "STATUS\n", json_out, err);
}

int agent_ctl_matches(const char *sock_path, const char *selector, char **json_out, struct bc_error *err)
{
	char req[CTL_LINE_MAX];
	if (strchr(selector, '\n') || (size_t)snprintf(req, sizeof(req), "MATCH %s\n", selector) >= sizeof(req))
		return bc_error_set(err, BC_ERR_INVALID, "bad instance name");
	return ctl_json(sock_path, req, json_out, err);
}
