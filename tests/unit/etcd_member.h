/* tests/unit/etcd_member.h - one real etcd member on free loopback ports
 * for the unit tests that talk to etcd (test_etcd, test_write): started
 * with etcd_start(), stopped by its PID and its data directory removed with
 * etcd_stop(). Header-only: each test is one binary. */
#ifndef TESTS_UNIT_ETCD_MEMBER_H
#define TESTS_UNIT_ETCD_MEMBER_H
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t etcd_pid;
static char etcd_dir[64];

/* A TCP port free on 127.0.0.1 now, or -1. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void etcd_stop(void)
{
	char cmd[128];

	if (etcd_pid > 0) {
		kill(etcd_pid, SIGKILL);
		waitpid(etcd_pid, NULL, 0);
		etcd_pid = 0;
	}
	if (etcd_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", etcd_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", etcd_dir);
		etcd_dir[0] = 0;
	}
}

/* Starts one etcd member with its data under /tmp/NAME.XXXXXX; its client
 * URL in url. 0, or -1 when it cannot be started. */
static int etcd_start(const char *name, char *url, size_t len)
{
	char peer[64], data[96], cluster[96];
	int cport = free_port(), pport = free_port();

	snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/%.32s.XXXXXX", name);
	if (cport < 0 || pport < 0 || !mkdtemp(etcd_dir))
		return -1;
	snprintf(url, len, "http://127.0.0.1:%d", cport);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	snprintf(data, sizeof(data), "%s/data", etcd_dir);
	snprintf(cluster, sizeof(cluster), "t=%s", peer);
	if ((etcd_pid = fork()) < 0)
		return -1;
	if (etcd_pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir", data,
		      "--listen-client-urls", url, "--advertise-client-urls", url,
		      "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
		      peer, "--initial-cluster", cluster,
		      "--initial-cluster-state", "new", (char *)NULL);
		_exit(127);
	}
	return 0;
}
#endif
