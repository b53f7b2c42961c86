// SPDX-License-Identifier: MIT
/*
 * Run a command the way a container runtime's seccomp profile would: its
 * io_uring_setup(2) fails with ERRNO (EPERM like Docker's default profile,
 * or ENOSYS), every other system call is allowed.
 *
 *   deny_io_uring EPERM|ENOSYS COMMAND [ARG...]
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned int err = 0;

	if (argc >= 3 && !strcmp(argv[1], "EPERM"))
		err = EPERM;
	else if (argc >= 3 && !strcmp(argv[1], "ENOSYS"))
		err = ENOSYS;
	if (!err) {
		fprintf(stderr,
			"usage: deny_io_uring EPERM|ENOSYS COMMAND [ARG...]\n");
		return 2;
	}
	struct sock_filter f[] = {
		/* Another architecture's calls: let them be (x86-64 only). */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("deny_io_uring: seccomp");
		return 77;
	}
	execvp(argv[2], argv + 2);
	perror("deny_io_uring: exec");
	return 127;
}
