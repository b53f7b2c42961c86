/* SPDX-License-Identifier: MIT */
/* vfmig subcommands and the exit codes every one of them uses. */
#ifndef VFM_AGENT_CMD_H
#define VFM_AGENT_CMD_H

/* Exit codes: stable, documented in --help and the README. */
enum vfm_exit {
	VFM_EXIT_OK = 0, /* done (migrated, compatible, described) */
	VFM_EXIT_ERROR = 1, /* internal error */
	VFM_EXIT_USAGE = 2, /* bad command line or malformed input */
	VFM_EXIT_REFUSED = 3, /* refused by the compatibility handshake */
	VFM_EXIT_PEER = 4, /* peer or transport failure; source resumed */
	VFM_EXIT_DEVICE = 5, /* device failure */
	VFM_EXIT_AUTH = 6, /* authentication failure */
	VFM_EXIT_UNKNOWN = 7, /* outcome unknown: both stopped, fence */
	VFM_EXIT_RESUME_FAILED = 8, /* failed, and the source did not resume */
};

#define VFM_EXIT_CODES_HELP                                                    \
	"Exit codes: 0 done, 2 usage or malformed input, 3 refused by the\n"   \
	"handshake, 4 peer or transport failure (source resumed), 5 device\n"  \
	"failure, 6 authentication failure, 7 outcome unknown: both devices\n" \
	"stopped, fence before resuming (vfmig outcome), 8 failed and the\n"   \
	"source device could not be resumed, 1 internal error.\n"

struct vfm_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
};

int vfm_cmd_compat(int argc, char **argv);
int vfm_cmd_send(int argc, char **argv);
int vfm_cmd_recv(int argc, char **argv);
int vfm_cmd_check(int argc, char **argv);
int vfm_cmd_outcome(int argc, char **argv);
int vfm_cmd_describe(int argc, char **argv);
int vfm_cmd_log(int argc, char **argv);

#endif
