/* Network namespaces for instances (root only).
 *
 * Links and addresses are made with iproute2's `ip`, run as a child with an argument vector (no
 * shell), rather than with hand-written rtnetlink: this happens once per instance, `ip` is the
 * reference implementation of exactly these messages (veth peers across namespaces, addresses,
 * named namespaces under /run/netns), and its error text is what an operator can act on. The
 * part that must be exact, binding the metadata listener inside the namespace, is done here with
 * setns() on a dedicated thread, so no other thread ever changes namespace.
 *
 * Layout per created instance NS = <prefix><local name> (naming.c: the instance's name when it is
 * unique on the host, else "<name>-<hash of its resource id>"): a veth pair (host side "bx<hash>h" with
 * A.B.(4k+1)/30, instance side "bx<hash>i" with A.B.(4k+2)/30 inside NS), lo up with
 * 169.254.169.254/32, and /etc/netns/NS/hosts naming badge's services at the host side address. */
#include "agent/agentint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/log.h"
#include "core/util.h"

#define IMDS_ADDR "169.254.169.254"
#define MAX_SLOTS 16383 /* /30 blocks in a /16, block 0 unused */

/* Runs argv (ip ...), optionally inside namespace fd nsfd; stderr silenced when quiet.
 * Returns the exit status (or -1). */
static int run(char *const argv[], int nsfd, bool quiet)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0)
			_exit(126);
		if (quiet) {
			int dn = open("/dev/null", O_WRONLY);
			if (dn >= 0)
				dup2(dn, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUN(nsfd, quiet, ...) run((char *const[]){__VA_ARGS__, NULL}, nsfd, quiet)

static uint32_t fnv(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Subnet slot of the instance: the saved one, else the lowest free one, saved. */
static int slot_for(struct agent *a, const char *ns, struct bc_error *err)
{
	json_t *doc = NULL;
	int rc = agent_json_load(a, "netns.json", &doc, err);
	if (rc != BC_OK)
		return -1;
	if (!doc && !(doc = json_object()))
		return -1;
	json_int_t s = json_integer_value(json_object_get(doc, ns));
	if (s <= 0) {
		unsigned char used[MAX_SLOTS + 1];
		memset(used, 0, sizeof(used));
		const char *k;
		json_t *v;
		json_object_foreach(doc, k, v) {
			json_int_t x = json_integer_value(v);
			if (x > 0 && x <= MAX_SLOTS)
				used[x] = 1;
		}
		for (s = 1; s <= MAX_SLOTS && used[s]; s++)
			;
		if (s > MAX_SLOTS || json_object_set_new(doc, ns, json_integer(s)) ||
		    agent_json_save(a, "netns.json", doc, err) != BC_OK)
			s = -1;
	}
	json_decref(doc);
	return (int)s;
}

static void slot_free(struct agent *a, const char *ns)
{
	json_t *doc = NULL;
	if (agent_json_load(a, "netns.json", &doc, NULL) != BC_OK || !doc)
		return;
	if (json_object_del(doc, ns) == 0)
		if (agent_json_save(a, "netns.json", doc, NULL) != BC_OK)
			bc_log_warn("agent: cannot save state");
	json_decref(doc);
}

static int slot_addr(struct agent *a, int slot, int host_side, char *out, size_t n)
{
	struct in_addr base;
	const char *subnet = a->cfg.netns_subnet ? a->cfg.netns_subnet : "10.213.0.0";
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", subnet);
	char *slash = strchr(tmp, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, tmp, &base) != 1)
		return -1;
	uint32_t v = (ntohl(base.s_addr) & 0xffff0000u) + (uint32_t)slot * 4 + (host_side ? 1 : 2);
	struct in_addr x = {.s_addr = htonl(v)};
	return inet_ntop(AF_INET, &x, out, (socklen_t)n) ? 0 : -1;
}

static void veth_names(const char *ns, char host[16], char inst[16])
{
	uint32_t h = fnv(ns) & 0xfffffffu;
	snprintf(host, 16, "bx%07xh", h);
	snprintf(inst, 16, "bx%07xi", h);
}

int agent_netns_write_hosts(struct agent *a, struct agent_instance *in, struct bc_error *err)
{
	if (!in->ns_name[0] || !in->slot)
		return BC_OK;
	char dir[PATH_MAX], addr[64];
	const char *domain = a->host.domain[0] ? a->host.domain : "badge.internal";
	if (a->cfg.server_addr)
		snprintf(addr, sizeof(addr), "%s", a->cfg.server_addr);
	else if (slot_addr(a, in->slot, 1, addr, sizeof(addr)))
		return bc_error_set(err, BC_ERR_INVALID, "bad --netns-subnet");
	snprintf(dir, sizeof(dir), "/etc/netns/%s", in->ns_name);
	if (bc_mkdir_p(dir, 0755, err) != BC_OK)
		return err ? err->status : BC_ERR_IO;
	struct bc_buf b = {0};
	int rc = bc_buf_appendf(&b, "127.0.0.1 localhost\n::1 localhost ip6-localhost\n%s login.%s management.%s vault.%s",
				addr, domain, domain, domain);
	pthread_mutex_lock(&a->mu);
	size_t i;
	json_t *v;
	json_array_foreach(a->vaults, i, v) {
		const char *name = json_string_value(v);
		if (rc == BC_OK && name && strlen(name) <= BC_LIMIT_NAME && !strpbrk(name, " \t\n/"))
			rc = bc_buf_appendf(&b, " %s.vault.%s", name, domain);
	}
	pthread_mutex_unlock(&a->mu);
	if (rc == BC_OK)
		rc = bc_buf_appends(&b, "\n");
	if (rc == BC_OK && (size_t)snprintf(in->hosts_path, sizeof(in->hosts_path), "%s/hosts", dir) >= sizeof(in->hosts_path))
		rc = BC_ERR_LIMIT;
	if (rc == BC_OK)
		rc = bc_write_file_atomic(in->hosts_path, b.data, b.len, 0644, err);
	else
		bc_error_set(err, rc, "cannot build the hosts file of %s", in->name);
	bc_buf_release(&b);
	return rc;
}

/* Opens /run/netns/NS when it is a live namespace. A plain file there is what is left when the
 * namespace was mounted in a mount namespace that has gone (an agent under `ip netns exec`
 * killed): removed, so that the namespace is made again. */
static int open_named(const char *ns)
{
	char path[PATH_MAX];
	struct statfs sf;
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == NSFS_MAGIC)
		return fd;
	close(fd);
	unlink(path);
	return -1;
}

/* Creates (or finds again after a restart) the namespace of in, its veth link and addresses. */
static int create_named(struct agent *a, struct agent_instance *in, struct bc_error *err)
{
	char hv[16], iv[16], haddr[64], iaddr[64], hcidr[72], icidr[72];
	const char *ns = in->ns_name;
	int fd = open_named(ns);
	if (fd < 0) {
		if (RUN(-1, false, "ip", "netns", "add", (char *)ns) != 0)
			return bc_error_set(err, BC_ERR_IO, "ip netns add %s failed", ns);
		if ((fd = open_named(ns)) < 0)
			return bc_error_set(err, BC_ERR_IO, "cannot open /run/netns/%s: %s", ns, strerror(errno));
	}
	in->nsfd = fd;
	int slot = slot_for(a, ns, err);
	if (slot <= 0)
		return err && err->status ? err->status : bc_error_set(err, BC_ERR_LIMIT, "no free veth subnet slot");
	in->slot = slot;
	veth_names(ns, hv, iv);
	if (slot_addr(a, slot, 1, haddr, sizeof(haddr)) || slot_addr(a, slot, 0, iaddr, sizeof(iaddr)))
		return bc_error_set(err, BC_ERR_INVALID, "bad --netns-subnet");
	snprintf(hcidr, sizeof(hcidr), "%s/30", haddr);
	snprintf(icidr, sizeof(icidr), "%s/30", iaddr);
	/* each step tolerates "exists" so that a restarted agent re-adopts what it made. The pair is
	 * made again when the instance side is missing: the host side may be the remnant of a
	 * namespace the kernel is still tearing down (asynchronously), so retry for a while. */
	if (RUN(fd, true, "ip", "link", "show", iv) != 0) {
		RUN(-1, true, "ip", "link", "del", hv);
		int tries = 0;
		while (RUN(-1, tries < 49, "ip", "link", "add", hv, "type", "veth", "peer", "name", iv, "netns",
			   (char *)ns) != 0) {
			if (++tries >= 50)
				return bc_error_set(err, BC_ERR_IO, "ip link add %s (veth to %s) failed", hv, ns);
			RUN(-1, true, "ip", "link", "del", hv);
			usleep(100 * 1000);
		}
	}
	RUN(-1, true, "ip", "addr", "add", hcidr, "dev", hv);
	if (RUN(-1, false, "ip", "link", "set", hv, "up") != 0)
		return bc_error_set(err, BC_ERR_IO, "ip link set %s up failed", hv);
	RUN(fd, true, "ip", "addr", "add", icidr, "dev", iv);
	if (RUN(fd, false, "ip", "link", "set", iv, "up") != 0)
		return bc_error_set(err, BC_ERR_IO, "ip link set %s up in %s failed", iv, ns);
	return BC_OK;
}

/* Is the mount at /run/netns a slave of another mount namespace's (mountinfo "master:N"; `ip`
 * makes it shared as well, which only propagates to this namespace's own peers)? Then the names made here are this process's alone: when its mount namespace
 * ends (the agent exits), so do the names, and a restarted agent cannot find the namespaces its
 * instances' processes still live in. This is the case under `ip netns exec` and under systemd
 * options that give a service a mount namespace of its own (ProtectSystem=, PrivateTmp= ...). */
bool agent_netns_names_private(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool slave = false;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL FIELDS...] - FSTYPE ... */
		char *save = NULL, *tok = strtok_r(line, " ", &save);
		const char *mountpoint = NULL;
		bool master = false;
		for (int field = 0; tok; field++, tok = strtok_r(NULL, " ", &save)) {
			if (field == 4)
				mountpoint = tok;
			else if (field >= 6 && strcmp(tok, "-") == 0)
				break;
			else if (field >= 6)
				master |= strncmp(tok, "master:", 7) == 0;
		}
		if (mountpoint && strcmp(mountpoint, "/run/netns") == 0)
			slave = master; /* the last mount there is the one in effect */
	}
	fclose(f);
	return slave;
}

int agent_netns_setup(struct agent *a, struct agent_instance *in, const char *adopt_path, struct bc_error *err)
{
	int rc;
	in->nsfd = -1;
	if (adopt_path) {
		in->ns_name[0] = '\0';
		if ((in->nsfd = open(adopt_path, O_RDONLY | O_CLOEXEC)) < 0)
			return bc_error_set(err, BC_ERR_IO, "cannot open namespace %s: %s", adopt_path, strerror(errno));
	} else {
		const char *prefix = a->cfg.netns_prefix ? a->cfg.netns_prefix : "badge-";
		/* the local name, not the bare name: two instances named alike in two resource groups
		 * must not meet in one namespace (naming.c) */
		if (!in->local[0] || (size_t)snprintf(in->ns_name, sizeof(in->ns_name), "%s%s", prefix, in->local) >=
					     sizeof(in->ns_name))
			return bc_error_set(err, BC_ERR_LIMIT, "namespace name too long for instance %s", in->name);
		if ((rc = create_named(a, in, err)) != BC_OK)
			return rc;
		static _Atomic bool warned;
		if (!atomic_load(&warned) && agent_netns_names_private() && !atomic_exchange(&warned, true))
			bc_log_warn("agent: this agent's mount namespace does not pass its mounts to the host's "
				    "(/run/netns is a slave mount): the namespaces it names end with it, and after a "
				    "restart it makes new ones, away from the processes already inside the old "
				    "(run the agent in the host's mount namespace: docs/operations.md)");
		if ((rc = agent_netns_write_hosts(a, in, err)) != BC_OK)
			return rc;
	}
	if (RUN(in->nsfd, false, "ip", "link", "set", "lo", "up") != 0)
		return bc_error_set(err, BC_ERR_IO, "cannot bring lo up in the namespace of %s", in->name);
	RUN(in->nsfd, true, "ip", "addr", "add", IMDS_ADDR "/32", "dev", "lo");
	return BC_OK;
}

struct bind_job {
	int nsfd;
	int back;
	int fd;
	int saved_errno;
	const char *step;
};

static void *bind_thread(void *arg)
{
	struct bind_job *j = arg;
	j->fd = -1;
	if (setns(j->nsfd, CLONE_NEWNET) != 0) {
		j->saved_errno = errno;
		j->step = "setns";
		return NULL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, IMDS_ADDR, &sa.sin_addr);
	if (fd < 0) {
		j->step = "socket";
	} else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
		j->step = "setsockopt";
	} else if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		j->step = "bind";
	} else if (listen(fd, 128) != 0) {
		j->step = "listen";
	} else {
		j->fd = fd;
		fd = -1;
	}
	j->saved_errno = errno;
	if (fd >= 0)
		close(fd);
	/* back to where we were; the thread ends anyway, so a failure here harms nothing */
	if (j->back >= 0)
		(void)setns(j->back, CLONE_NEWNET);
	return NULL;
}

int agent_netns_bind(struct agent *a, int nsfd, int *out_fd, struct bc_error *err)
{
	struct bind_job j = {.nsfd = nsfd, .back = a->original_netns, .fd = -1};
	pthread_t t;
	if (pthread_create(&t, NULL, bind_thread, &j) != 0)
		return bc_error_set(err, BC_ERR_NOMEM, "cannot start the bind thread");
	pthread_join(t, NULL);
	if (j.fd < 0)
		return bc_error_set(err, BC_ERR_IO, "%s of %s:80 in the instance namespace failed: %s",
				    j.step ? j.step : "bind", IMDS_ADDR, strerror(j.saved_errno));
	*out_fd = j.fd;
	return BC_OK;
}

void agent_netns_teardown(struct agent *a, struct agent_instance *in)
{
	if (in->nsfd >= 0)
		close(in->nsfd);
	in->nsfd = -1;
	if (!in->ns_name[0])
		return; /* adopted: it belongs to someone else */
	char hv[16], iv[16], dir[PATH_MAX];
	veth_names(in->ns_name, hv, iv);
	RUN(-1, true, "ip", "link", "del", hv);
	RUN(-1, true, "ip", "netns", "del", in->ns_name);
	snprintf(dir, sizeof(dir), "/etc/netns/%s/hosts", in->ns_name);
	unlink(dir);
	snprintf(dir, sizeof(dir), "/etc/netns/%s", in->ns_name);
	rmdir(dir);
	slot_free(a, in->ns_name);
}
