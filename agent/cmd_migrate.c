// SPDX-License-Identifier: MIT
/* vfmig send / recv / check: option parsing, then the engine. */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "cmd.h"
#include "engine.h"

enum {
	OPT_DEVICE = 256,
	OPT_TO,
	OPT_LISTEN,
	OPT_SECRET,
	OPT_STREAMS,
	OPT_DOWNTIME,
	OPT_MAXIT,
	OPT_MAXPRE,
	OPT_RATE,
	OPT_TRANSPORT,
	OPT_MID,
	OPT_LOG,
	OPT_STATS,
	OPT_TIMEOUT,
	OPT_WAIT,
	OPT_LINGER,
	OPT_OUTCOME,
	OPT_PREAUTH,
	OPT_VERIFY,
	OPT_RESUME,
	OPT_INTEGRITY,
	OPT_ENCRYPT,
	OPT_OVER_LIMIT,
	OPT_HELP,
};

static const struct option mig_opts[] = {
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "to", required_argument, NULL, OPT_TO },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "secret-file", required_argument, NULL, OPT_SECRET },
	{ "streams", required_argument, NULL, OPT_STREAMS },
	{ "downtime-limit-ms", required_argument, NULL, OPT_DOWNTIME },
	{ "max-iterations", required_argument, NULL, OPT_MAXIT },
	{ "max-precopy-s", required_argument, NULL, OPT_MAXPRE },
	{ "rate-limit", required_argument, NULL, OPT_RATE },
	{ "transport", required_argument, NULL, OPT_TRANSPORT },
	{ "migration-id", required_argument, NULL, OPT_MID },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "stats-json", required_argument, NULL, OPT_STATS },
	{ "timeout-s", required_argument, NULL, OPT_TIMEOUT },
	{ "wait-s", required_argument, NULL, OPT_WAIT },
	{ "linger-s", required_argument, NULL, OPT_LINGER },
	{ "outcome-s", required_argument, NULL, OPT_OUTCOME },
	{ "preauth-s", required_argument, NULL, OPT_PREAUTH },
	{ "verify", required_argument, NULL, OPT_VERIFY },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "integrity", required_argument, NULL, OPT_INTEGRITY },
	{ "encrypt", no_argument, NULL, OPT_ENCRYPT },
	{ "if-over-limit", required_argument, NULL, OPT_OVER_LIMIT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

#define DEVICE_HELP                                                               \
	"Devices (SPEC):\n"                                                       \
	"  vfio:<PCI address>    a function bound to a VFIO migration driver,\n"  \
	"                        e.g. vfio:0000:00:04.0 (vfmig_stub.ko)\n"        \
	"  sim:k=v,...           an in-process device with the driver's\n"        \
	"                        semantics: size=64M dirty=0 (bytes/s dirtied\n"  \
	"                        while running) seed=N model=vfmig-edu\n"         \
	"                        version=2.0.3 compatible=2.0.0-2.0.9\n"          \
	"                        features=pre_copy/p2p/mmap param.NAME=V\n"       \
	"                        allowed.NAME=V1/V2 buf=32M mmap=on|off\n"        \
	"                        precopy=on|off zero=PCT (%% zero pages)\n"       \
	"                        formats=1/2 (stream formats it loads)\n"         \
	"--device repeated (up to 8): a device set, one VM's devices moved in\n"  \
	"one switchover, paired in order with the destination's devices; every\n" \
	"device must offer the P2P states (feature p2p). The set stops\n"         \
	"together: all to PRE_COPY_P2P before any to STOP_COPY; and starts\n"     \
	"together: all in RUNNING_P2P before any runs.\n"

static void help_send(FILE *f)
{
	fprintf(f,
		"usage: vfmig send --device SPEC --to HOST:PORT --secret-file FILE [OPTIONS]\n"
		"\n"
		"Migrate the state of the device SPEC to the `vfmig recv` at HOST:PORT.\n"
		"Nothing changes on this device before the destination accepts it; any\n"
		"failure before the destination commits returns it to RUNNING.\n"
		"After success the device is left STOPped (the VM runs at the destination).\n"
		"\n"
		"  --streams N             parallel data streams (1)\n"
		"  --downtime-limit-ms MS  stop when the rest fits in MS (300)\n"
		"  --max-iterations N      pre-copy iterations at most (30; 0: no limit)\n"
		"  --max-precopy-s S       pre-copy time at most (120; 0: no limit)\n"
		"  --if-over-limit switch|fail  at one of those limits with the rest\n"
		"                          still over the downtime limit: switch anyway\n"
		"                          (and say so) or fail, the source running (switch)\n"
		"  --rate-limit MBPS       pre-copy bandwidth cap in MB/s (none)\n"
		"  --transport NAME        data transport: tcp or rdma (tcp)\n"
		"  --encrypt               tcp: seal the state with AES-256-GCM under a\n"
		"                          key of this migration (default: authenticated\n"
		"                          by the stream MAC, but readable on the wire)\n"
		"  --integrity gmac|none   the stream MAC over the whole state (gmac)\n"
		"  --verify digest|none    compare both devices' state digests while\n"
		"                          both are stopped, before the switch (digest)\n"
		"  --migration-id UUID     this migration's id (generated if absent)\n"
		"  --log FILE              JSON lines log (default: stderr if not a TTY)\n"
		"  --stats-json FILE       write the final summary as JSON\n"
		"  --timeout-s S           stall limit for every wait, and how long\n"
		"                          to wait for the destination to listen (30)\n"
		"  --outcome-s S           when the switchover's outcome is unknown, ask\n"
		"                          the destination this long (the timeout)\n"
		"  --help                  this help\n"
		"\n" DEVICE_HELP "\n" VFM_EXIT_CODES_HELP);
}

static void help_recv(FILE *f)
{
	fprintf(f,
		"usage: vfmig recv --device SPEC --listen ADDR:PORT --secret-file FILE [OPTIONS]\n"
		"\n"
		"Serve one migration (or one check) into the device SPEC, then exit.\n"
		"This side decides compatibility; a refused or checking source leaves\n"
		"the device untouched. A failed migration resets the device.\n"
		"Connections that are not vfmig sources are refused and logged.\n"
		"\n"
		"  --migration-id UUID     accept only this migration (default: any)\n"
		"  --log FILE              JSON lines log (default: stderr if not a TTY)\n"
		"  --stats-json FILE       write the final summary as JSON\n"
		"  --timeout-s S           stall limit for every wait (30)\n"
		"  --wait-s S              how long to wait for a source (600)\n"
		"  --encrypt               refuse a source that does not seal the state\n"
		"                          (a source's --encrypt is honoured anyway)\n"
		"  --integrity gmac|none   require the source's stream MAC (gmac)\n"
		"  --linger-s S            after the switch, answer outcome queries\n"
		"                          this long (the timeout)\n"
		"  --preauth-s S           a connection's time to authenticate (5)\n"
		"  --help                  this help\n"
		"\n" DEVICE_HELP "\n" VFM_EXIT_CODES_HELP
		"A check ends with 0 (compatible) or 3 (refused).\n");
}

static void help_check(FILE *f)
{
	fprintf(f,
		"usage: vfmig check --device SPEC --to HOST:PORT --secret-file FILE [OPTIONS]\n"
		"\n"
		"Run the handshake only: print the destination's verdict on this\n"
		"device. Nothing changes on either side.\n"
		"\n"
		"  --migration-id UUID     id for the logs (generated if absent)\n"
		"  --log FILE              JSON lines log (default: stderr if not a TTY)\n"
		"  --stats-json FILE       write the verdict summary as JSON\n"
		"  --timeout-s S           stall limit for every wait, and how long\n"
		"                          to wait for the destination to listen (30)\n"
		"  --help                  this help\n"
		"\n" DEVICE_HELP "\n" VFM_EXIT_CODES_HELP);
}

static void help_outcome(FILE *f)
{
	fprintf(f,
		"usage: vfmig outcome --device SPEC --to HOST:PORT --secret-file FILE\n"
		"                     --migration-id UUID [--resume] [OPTIONS]\n"
		"\n"
		"Settle a migration that ended with exit 7 (outcome unknown): ask\n"
		"the destination agent, which keeps answering for its --linger-s\n"
		"after the outcome, whether it runs migration UUID. Prints\n"
		"'running' (exit 0: leave the source stopped) or 'aborted' (exit 4:\n"
		"the destination will never run it; with --resume the source device\n"
		"SPEC is set RUNNING again). No answer within --outcome-s: exit 7;\n"
		"keep the source fenced (once the destination agent has exited, its\n"
		"exit code and log say: 0 ran, anything else did not).\n"
		"\n"
		"  --resume                resume SPEC when the answer is 'aborted'\n"
		"  --outcome-s S           ask for at most S seconds (30)\n"
		"  --log FILE              JSON lines log (default: stderr if not a TTY)\n"
		"  --help                  this help\n"
		"\n" DEVICE_HELP "\n" VFM_EXIT_CODES_HELP);
}

static int num(const char *name, const char *v, double lo, double hi,
	       double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d < lo || d > hi) {
		fprintf(stderr,
			"vfmig: --%s wants a number from %g to %g, not '%s'.\n",
			name, lo, hi, v);
		return -1;
	}
	*out = d;
	return 0;
}

static int parse(int argc, char **argv, struct vfm_mig_opts *o,
		 const char *role, void (*help)(FILE *))
{
	double d;
	int c;

	vfm_mig_opts_defaults(o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "", mig_opts, NULL)) != -1) {
		const char *name;

		if (c < OPT_DEVICE || c > OPT_HELP) {
			fprintf(stderr, "(see 'vfmig %s --help')\n", role);
			return VFM_EXIT_USAGE;
		}
		name = mig_opts[c - OPT_DEVICE].name;
		switch (c) {
		case OPT_DEVICE:
			if (o->ndevices == VFM_SET_MAX) {
				fprintf(stderr,
					"vfmig %s: a set holds at most %d devices.\n",
					role, VFM_SET_MAX);
				return VFM_EXIT_USAGE;
			}
			o->devices[o->ndevices++] = optarg;
			if (!o->device)
				o->device = optarg;
			break;
		case OPT_TO:
			o->addr = optarg;
			break;
		case OPT_LISTEN:
			o->addr = optarg;
			break;
		case OPT_SECRET:
			o->secret_file = optarg;
			break;
		case OPT_TRANSPORT:
			o->transport = optarg;
			break;
		case OPT_LOG:
			o->log_path = optarg;
			break;
		case OPT_STATS:
			o->stats_path = optarg;
			break;
		case OPT_MID: {
			uuid_t u;

			if (uuid_parse(optarg, u)) {
				fprintf(stderr,
					"vfmig: --migration-id '%s' is not a UUID.\n",
					optarg);
				return VFM_EXIT_USAGE;
			}
			uuid_unparse_lower(u, o->migration_id);
			break;
		}
		case OPT_HELP:
			help(stdout);
			return VFM_EXIT_OK;
		case OPT_RESUME:
			o->resume = true;
			break;
		default:
			if (c == OPT_STREAMS && !num(name, optarg, 1, 64, &d))
				o->streams = (unsigned int)d;
			else if (c == OPT_DOWNTIME &&
				 !num(name, optarg, 1, 1e7, &d))
				o->downtime_limit_ms = d;
			else if (c == OPT_MAXIT &&
				 !num(name, optarg, 0, 1e6, &d))
				o->max_iterations = (unsigned int)d;
			else if (c == OPT_MAXPRE &&
				 !num(name, optarg, 0, 1e6, &d))
				o->max_precopy_s = d;
			else if (c == OPT_RATE &&
				 !num(name, optarg, 0, 1e7, &d))
				o->rate_limit_mbps = d;
			else if (c == OPT_TIMEOUT &&
				 !num(name, optarg, 0.1, 1e5, &d))
				o->timeout_s = d;
			else if (c == OPT_WAIT &&
				 !num(name, optarg, 0.1, 1e6, &d))
				o->wait_s = d;
			else if (c == OPT_LINGER &&
				 !num(name, optarg, 0, 1e5, &d))
				o->linger_s = d;
			else if (c == OPT_OUTCOME &&
				 !num(name, optarg, 0, 1e5, &d))
				o->outcome_s = d;
			else if (c == OPT_PREAUTH &&
				 !num(name, optarg, 0.1, 600, &d))
				o->preauth_s = d;
			else if (c == OPT_VERIFY && !strcmp(optarg, "digest"))
				o->verify = true;
			else if (c == OPT_VERIFY && !strcmp(optarg, "none"))
				o->verify = false;
			else if (c == OPT_ENCRYPT)
				o->encrypt = true;
			else if (c == OPT_OVER_LIMIT &&
				 !strcmp(optarg, "switch"))
				o->fail_over_limit = false;
			else if (c == OPT_OVER_LIMIT && !strcmp(optarg, "fail"))
				o->fail_over_limit = true;
			else if (c == OPT_OVER_LIMIT) {
				fprintf(stderr,
					"vfmig %s: --if-over-limit takes 'switch' or 'fail', not '%s'.\n",
					role, optarg);
				return VFM_EXIT_USAGE;
			} else if (c == OPT_INTEGRITY &&
				   !strcmp(optarg, "gmac"))
				o->integrity = true;
			else if (c == OPT_INTEGRITY && !strcmp(optarg, "none"))
				o->integrity = false;
			else if (c == OPT_INTEGRITY) {
				fprintf(stderr,
					"vfmig %s: --integrity takes 'gmac' or 'none', not '%s'.\n",
					role, optarg);
				return VFM_EXIT_USAGE;
			} else if (c == OPT_VERIFY) {
				fprintf(stderr,
					"vfmig %s: --verify takes 'digest' or 'none', not '%s'.\n",
					role, optarg);
				return VFM_EXIT_USAGE;
			} else
				return VFM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"vfmig %s: unexpected argument '%s' (see --help).\n",
			role, argv[optind]);
		return VFM_EXIT_USAGE;
	}
	if (!o->device || !o->addr || !o->secret_file) {
		fprintf(stderr,
			"vfmig %s: --device, --%s and --secret-file are required (see --help).\n",
			role, strcmp(role, "recv") ? "to" : "listen");
		return VFM_EXIT_USAGE;
	}
	if (strcmp(o->transport, "tcp") && strcmp(o->transport, "rdma")) {
		fprintf(stderr, "vfmig %s: --transport must be tcp or rdma.\n",
			role);
		return VFM_EXIT_USAGE;
	}
	if (o->encrypt && !strcmp(o->transport, "rdma")) {
		fprintf(stderr,
			"vfmig %s: --encrypt is for --transport tcp: rdma writes land in the destination's memory without the agent seeing them. On rdma the state is authenticated (--integrity gmac) but not encrypted.\n",
			role);
		return VFM_EXIT_USAGE;
	}
	return -1;
}

static int run(int argc, char **argv, const char *role, bool check,
	       void (*help)(FILE *))
{
	struct vfm_mig_opts *o = calloc(1, sizeof(*o));
	char why[512];
	int ret;

	if (!o)
		return VFM_EXIT_ERROR;
	ret = parse(argc, argv, o, role, help);
	if (ret >= 0)
		goto out;
	o->check = check;
	o->outcome = !strcmp(role, "outcome");
	if (o->outcome && !o->migration_id[0]) {
		fprintf(stderr,
			"vfmig outcome: --migration-id is required (see --help).\n");
		ret = VFM_EXIT_USAGE;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(role, "recv") && !o->migration_id[0]) {
		uuid_t u;

		uuid_generate(u);
		uuid_unparse_lower(u, o->migration_id);
	}
	if (vfm_log_open(o->log_path,
			 strcmp(role, "recv") ? "source" : "destination")) {
		fprintf(stderr, "vfmig %s: cannot open the log %s.\n", role,
			o->log_path);
		ret = VFM_EXIT_USAGE;
		goto out;
	}
	vfm_log_set_migration_id(o->migration_id);
	if (vfm_secret_load(o, why, sizeof(why))) {
		vfm_log_msg("error", "error", "%s", why);
		vfm_log_error_line(role, why);
		ret = VFM_EXIT_USAGE;
		goto close;
	}
	if (o->linger_s < 0)
		o->linger_s = o->timeout_s;
	if (o->outcome_s < 0)
		o->outcome_s = o->timeout_s;
	vfm_eng_signals_install();
	ret = o->outcome	   ? vfm_engine_outcome(o) :
	      strcmp(role, "recv") ? vfm_engine_send(o) :
				     vfm_engine_recv(o);
	{
		struct vfm_json j;

		vfm_json_init(&j);
		vfm_json_i64(&j, "exit_code", ret);
		vfm_log_emit("exit", &j);
	}
close:
	OPENSSL_cleanse(o->secret, sizeof(o->secret));
	vfm_log_close();
out:
	free(o);
	return ret;
}

int vfm_cmd_send(int argc, char **argv)
{
	return run(argc, argv, "send", false, help_send);
}

int vfm_cmd_recv(int argc, char **argv)
{
	return run(argc, argv, "recv", false, help_recv);
}

int vfm_cmd_check(int argc, char **argv)
{
	return run(argc, argv, "check", true, help_check);
}

int vfm_cmd_outcome(int argc, char **argv)
{
	return run(argc, argv, "outcome", false, help_outcome);
}
