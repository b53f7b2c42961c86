// SPDX-License-Identifier: MIT
/*
 * Peers measured in the same run: iperf3 at each stream count (tcp),
 * vfm-xport-perf (the transport without the agent), ib_write_bw with 1 MiB
 * messages (rdma, when a device exists) and memcpy (this machine's limit).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double vb_link_Bps(double gbps)
{
	/* RoCEv2 at MTU 4096: 4096 payload bytes per 4096 + 84 on the wire
	 * (Ethernet, IP, UDP, BTH, RETH/ICRC, preamble, gap) gives 12.25 GB/s
	 * of goodput at 100 Gb/s; the same fraction at any speed. */
	return gbps * 1e9 / 8.0 * 0.98;
}

static double memcpy_Bps(void)
{
	size_t len = 256u << 20;
	char *a = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *b = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0, t, best = 0;

	if (a == MAP_FAILED || b == MAP_FAILED)
		return 0;
	memset(a, 1, len);
	memset(b, 2, len);
	for (int i = 0; i < 5; i++) {
		t0 = vb_now();
		memcpy(i % 2 ? a : b, i % 2 ? b : a, len);
		t = vb_now() - t0;
		if (t > 0 && len / t > best)
			best = (double)len / t;
	}
	munmap(a, len);
	munmap(b, len);
	return best;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double iperf3(const struct vb_opts *o, unsigned int streams,
		     const char *dir, char *why, size_t whylen, double *cpu_gib)
{
	char host[256] = "127.0.0.1", port_s[16], par[16], secs[16], out[4200],
	     sout[4200];
	struct vb_proc srv = { 0 }, cli = { 0 };
	double bps = 0;
	struct json_object *rep;
	int port;

	if (o->peer) {
		const char *c =
			o->iperf_server ? strrchr(o->iperf_server, ':') : NULL;

		snprintf(host, sizeof(host), "%.*s",
			 o->iperf_server ?
				 (int)(c ? c - o->iperf_server :
					   (long)strlen(o->iperf_server)) :
				 255,
			 o->iperf_server ? o->iperf_server : o->peer);
		port = c ? atoi(c + 1) : 5201;
	} else {
		port = vb_free_port();
		if (port <= 0) {
			snprintf(why, whylen, "No free port for iperf3.");
			return 0;
		}
	}
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(par, sizeof(par), "%u", streams);
	snprintf(secs, sizeof(secs), "%g", o->peer_s);
	snprintf(out, sizeof(out), "%s/iperf3-P%u.json", dir, streams);
	snprintf(sout, sizeof(sout), "%s/iperf3-server.out", dir);
	if (!o->peer) {
		char *argv[] = { "iperf3", "-s",   "-B", host,
				 "-p",	   port_s, "-1", NULL };

		if (vb_spawn(&srv, argv, sout)) {
			snprintf(why, whylen, "Cannot start iperf3 -s.");
			return 0;
		}
		sleep_ms(300);
	}
	{
		char *argv[] = { "iperf3", "-c", host, "-p", port_s, "-P",
				 par,	   "-t", secs, "-J", NULL };

		if (!vb_spawn(&cli, argv, out))
			vb_wait(&cli, o->peer_s + 20);
	}
	if (!o->peer)
		vb_wait(&srv, 5);
	rep = vb_json_load(out);
	if (rep) {
		double bits = 0;

		double h = 0, r = 0, dur = 0, bytes = 0;

		if (vb_json_num(rep, "end.sum_received.bits_per_second", &bits))
			bps = bits / 8.0;
		/* percent of one CPU, client (host) and server (remote) */
		if (vb_json_num(rep, "end.cpu_utilization_percent.host_total",
				&h) &&
		    vb_json_num(rep, "end.cpu_utilization_percent.remote_total",
				&r) &&
		    vb_json_num(rep, "end.sum_received.seconds", &dur) &&
		    vb_json_num(rep, "end.sum_received.bytes", &bytes) &&
		    bytes > 0)
			*cpu_gib = (h + r) / 100 * dur /
				   (bytes / (double)(1ull << 30));
		else if (!vb_json_str(rep, "error", why, whylen))
			snprintf(why, whylen, "iperf3 gave no sum_received.");
	} else {
		snprintf(why, whylen, "iperf3 wrote no JSON report (%.180s).",
			 out);
	}
	json_object_put(rep);
	return bps;
}

static double xport_perf(const struct vb_opts *o, unsigned int streams,
			 const char *dir)
{
	char st[16], out[4200];
	struct vb_proc p = { 0 };
	double gbps = 0;
	struct json_object *rep;

	snprintf(st, sizeof(st), "%u", streams);
	snprintf(out, sizeof(out), "%s/xport-perf-P%u.json", dir, streams);
	{
		char *argv[] = { (char *)o->xport_perf, "--size", "1",
				 "--streams",		st,	  NULL };

		if (vb_spawn(&p, argv, out))
			return 0;
		vb_wait(&p, 60);
	}
	/* One JSON line per role; the first says it. */
	rep = vb_log_load(out);
	if (rep && json_object_array_length(rep) &&
	    vb_json_num(json_object_array_get_idx(rep, 0), "GBps", &gbps))
		gbps *= 1e9;
	else
		gbps = 0;
	json_object_put(rep);
	return gbps;
}

/* First RDMA device under /sys/class/infiniband, or "" */
static void rdma_device(char *out, size_t len)
{
	DIR *d = opendir("/sys/class/infiniband");
	struct dirent *e;

	out[0] = '\0';
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.') {
			snprintf(out, len, "%.63s", e->d_name);
			break;
		}
	}
	closedir(d);
}

/* ib_write_bw at 1 MiB messages (the agent's largest write); the data
 * line after the header: bytes iterations peak average msgrate. */
static double ib_write_bw(const struct vb_opts *o, const char *dev,
			  const char *dir, char *why, size_t whylen)
{
	char port_s[16], secs[16], sout[4200], cout[4200];
	struct vb_proc srv = { 0 }, cli = { 0 };
	double gbps = 0;
	char *s;
	int port = vb_free_port();

	snprintf(port_s, sizeof(port_s), "%d", port > 0 ? port : 18515);
	snprintf(secs, sizeof(secs), "%d",
		 (int)(o->peer_s < 1 ? 1 : o->peer_s));
	snprintf(sout, sizeof(sout), "%s/ib_write_bw-server.out", dir);
	snprintf(cout, sizeof(cout), "%s/ib_write_bw-client.out", dir);
	if (!o->peer) {
		char *argv[] = { "ib_write_bw",	   "-d", (char *)dev, "-s",
				 "1048576",	   "-D", secs,	      "-F",
				 "--report_gbits", "-p", port_s,      NULL };

		if (vb_spawn(&srv, argv, sout)) {
			snprintf(why, whylen, "Cannot start ib_write_bw.");
			return 0;
		}
		sleep_ms(500);
	}
	{
		char *argv[] = { "ib_write_bw",
				 "-d",
				 (char *)dev,
				 "-s",
				 "1048576",
				 "-D",
				 secs,
				 "-F",
				 "--report_gbits",
				 "-p",
				 port_s,
				 (char *)(o->peer ? o->peer : "127.0.0.1"),
				 NULL };

		if (!vb_spawn(&cli, argv, cout))
			vb_wait(&cli, o->peer_s + 30);
	}
	if (!o->peer)
		vb_wait(&srv, 10);
	s = vb_read_file(cout, NULL);
	if (s) {
		const char *h = strstr(s, "BW average");
		const char *line = h ? strchr(h, '\n') : NULL;
		double bytes, iters, peak, avg;

		if (line && sscanf(line + 1, "%lf %lf %lf %lf", &bytes, &iters,
				   &peak, &avg) == 4)
			gbps = avg;
		else
			snprintf(why, whylen,
				 "ib_write_bw printed no result (see %.180s).",
				 cout);
	}
	free(s);
	return gbps * 1e9 / 8.0;
}

void vb_peers_measure(const struct vb_opts *o, struct vb_peers *pe,
		      const char *dir)
{
	bool tcp = false, rdma = false;

	for (int i = 0; i < o->ntransports; i++) {
		tcp |= !strcmp(o->transports[i], "tcp");
		rdma |= !strcmp(o->transports[i], "rdma");
	}
	pe->n = o->nstreams;
	for (int i = 0; i < o->nstreams; i++)
		pe->streams[i] = o->streams[i];
	fprintf(stderr, "vfmig-bench: peers: memcpy");
	pe->memcpy_Bps = memcpy_Bps();
	if (tcp && !vb_have_prog("iperf3"))
		snprintf(pe->iperf_why, sizeof(pe->iperf_why),
			 "iperf3 is not installed (apt-get install iperf3).");
	for (int i = 0; tcp && !pe->iperf_why[0] && i < o->nstreams; i++) {
		fprintf(stderr, ", iperf3 -P %u", o->streams[i]);
		pe->iperf_Bps[i] = iperf3(o, o->streams[i], dir, pe->iperf_why,
					  sizeof(pe->iperf_why),
					  &pe->iperf_cpu_gib[i]);
	}
	for (int i = 0; tcp && !o->peer && o->xport_perf && i < o->nstreams;
	     i++) {
		fprintf(stderr, ", vfm-xport-perf x%u", o->streams[i]);
		pe->xport_Bps[i] = xport_perf(o, o->streams[i], dir);
	}
	rdma_device(pe->rdma_dev, sizeof(pe->rdma_dev));
	if (!rdma)
		snprintf(pe->ib_why, sizeof(pe->ib_why),
			 "rdma is not in --transport.");
	else if (!pe->rdma_dev[0])
		snprintf(
			pe->ib_why, sizeof(pe->ib_why),
			"No RDMA device (/sys/class/infiniband is empty): soft-RoCE needs the rdma_rxe module, which this host cannot load; run the bench in the tests/vm guest (rxe0) or on RDMA hosts.");
	else if (!vb_have_prog("ib_write_bw"))
		snprintf(
			pe->ib_why, sizeof(pe->ib_why),
			"ib_write_bw is not installed (apt-get install perftest).");
	else {
		fprintf(stderr, ", ib_write_bw on %s", pe->rdma_dev);
		pe->ib_Bps = ib_write_bw(o, pe->rdma_dev, dir, pe->ib_why,
					 sizeof(pe->ib_why));
	}
	fprintf(stderr, "\n");
}

void vb_peers_again(const struct vb_opts *o, struct vb_peers *pe,
		    const char *dir)
{
	struct vb_peers after = { 0 };
	struct vb_opts tcp_only = *o;
	char sub[4200];

	snprintf(sub, sizeof(sub), "%s/after", dir);
	vb_mkdir_p(sub);
	tcp_only.ntransports = 1;
	snprintf(tcp_only.transports[0], sizeof(tcp_only.transports[0]), "tcp");
	fprintf(stderr, "vfmig-bench: the peers again, after the matrix\n");
	vb_peers_measure(&tcp_only, &after, sub);
	for (int i = 0; i < pe->n; i++) {
		pe->iperf_before[i] = pe->iperf_Bps[i];
		pe->xport_before[i] = pe->xport_Bps[i];
		pe->iperf_after[i] = after.iperf_Bps[i];
		pe->xport_after[i] = after.xport_Bps[i];
		if (pe->iperf_Bps[i] > 0 && after.iperf_Bps[i] > 0)
			pe->iperf_Bps[i] =
				(pe->iperf_Bps[i] + after.iperf_Bps[i]) / 2;
		if (pe->iperf_cpu_gib[i] > 0 && after.iperf_cpu_gib[i] > 0)
			pe->iperf_cpu_gib[i] = (pe->iperf_cpu_gib[i] +
						after.iperf_cpu_gib[i]) /
					       2;
		if (pe->xport_Bps[i] > 0 && after.xport_Bps[i] > 0)
			pe->xport_Bps[i] =
				(pe->xport_Bps[i] + after.xport_Bps[i]) / 2;
	}
	if (after.memcpy_Bps > pe->memcpy_Bps)
		pe->memcpy_Bps = after.memcpy_Bps;
}

double vb_peer_for(const struct vb_peers *pe, const char *transport,
		   unsigned int streams)
{
	if (!strcmp(transport, "rdma"))
		return pe->ib_Bps;
	for (int i = 0; i < pe->n; i++)
		if (pe->streams[i] == streams)
			return pe->iperf_Bps[i];
	return 0;
}
