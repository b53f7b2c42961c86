// SPDX-License-Identifier: MIT
/* vfmig: the migration agent. One binary, git-style subcommands. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const struct vfm_cmd vfm_cmds[] = {
	{ "send", "migrate a device's state to a receiving agent",
	  vfm_cmd_send },
	{ "recv", "receive one migration into a device", vfm_cmd_recv },
	{ "check", "ask a receiving agent whether it accepts this device",
	  vfm_cmd_check },
	{ "outcome",
	  "settle an unknown outcome: ask the destination, resume if it aborted",
	  vfm_cmd_outcome },
	{ "describe", "print a device's descriptor, state and digest",
	  vfm_cmd_describe },
	{ "compat", "compare two device descriptors offline", vfm_cmd_compat },
	{ "log", "print an agent's JSON log as readable lines", vfm_cmd_log },
};

#define VFM_NCMDS (sizeof(vfm_cmds) / sizeof(vfm_cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: vfmig COMMAND [OPTIONS]   (vfmig COMMAND --help)\n\n"
		   "Live migration of VFIO-assigned PCI device state.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < VFM_NCMDS; i++)
		fprintf(f, "  %-10s %s\n", vfm_cmds[i].name,
			vfm_cmds[i].summary);
	fprintf(f, "\n" VFM_EXIT_CODES_HELP);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return VFM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return VFM_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("vfmig %s\n", VFM_VERSION);
		return VFM_EXIT_OK;
	}
	for (size_t i = 0; i < VFM_NCMDS; i++)
		if (!strcmp(argv[1], vfm_cmds[i].name))
			return vfm_cmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "vfmig: '%s' is not a command (see 'vfmig --help')\n",
		argv[1]);
	return VFM_EXIT_USAGE;
}
