// SPDX-License-Identifier: MIT
/* Child processes: spawn with output to a file, reap with their rusage. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static void child_io(const char *out_path)
{
	int fd = open(out_path ? out_path : "/dev/null",
		      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (nul >= 0)
		dup2(nul, STDIN_FILENO);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	/* Its own process group: a timeout kills the whole of it. */
	setpgid(0, 0);
}

int vb_spawn(struct vb_proc *p, char *const argv[], const char *out_path)
{
	pid_t pid;

	memset(p, 0, sizeof(*p));
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		child_io(out_path);
		execvp(argv[0], argv);
		fprintf(stderr, "vfmig-bench: cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	p->pid = pid;
	return 0;
}

int vb_spawn_sh(struct vb_proc *p, const char *cmd, const char *out_path)
{
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };

	return vb_spawn(p, argv, out_path);
}

static void reaped(struct vb_proc *p, int status, const struct rusage *ru)
{
	p->done = true;
	p->status = status;
	p->maxrss_kb = ru->ru_maxrss;
	p->cpu_s = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
		   (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

bool vb_poll(struct vb_proc *p)
{
	struct rusage ru;
	int status;
	pid_t r;

	if (p->done || p->pid <= 0)
		return true;
	r = wait4(p->pid, &status, WNOHANG, &ru);
	if (r == p->pid)
		reaped(p, status, &ru);
	else if (r < 0 && errno == ECHILD)
		p->done = true, p->status = -1;
	return p->done;
}

int vb_wait(struct vb_proc *p, double timeout_s)
{
	double until = vb_now() + timeout_s;

	while (!vb_poll(p)) {
		struct timespec ts = { 0, 5000000 };

		if (vb_now() > until) {
			vb_kill(p);
			break;
		}
		nanosleep(&ts, NULL);
	}
	return vb_exit_code(p);
}

void vb_kill(struct vb_proc *p)
{
	struct rusage ru;
	int status;

	if (p->done || p->pid <= 0)
		return;
	kill(-p->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 10000000 };

		if (vb_poll(p))
			return;
		nanosleep(&ts, NULL);
	}
	kill(-p->pid, SIGKILL);
	if (wait4(p->pid, &status, 0, &ru) == p->pid)
		reaped(p, status, &ru);
	p->done = true;
}

int vb_exit_code(const struct vb_proc *p)
{
	if (!p->done || p->status < 0)
		return -1;
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	return 128 + (WIFSIGNALED(p->status) ? WTERMSIG(p->status) : 0);
}

double vb_proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* After ")": state(3) ... utime(14) stime(15). */
	if (!p ||
	    sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		   &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
