// SPDX-License-Identifier: MIT
/* Engine pieces both roles use: secret, device, handshake, control I/O. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "dev_set.h"
#include "engine.h"
#include "verdict_fmt.h"
#include "vfm/switchover.h"

void vfm_mig_opts_defaults(struct vfm_mig_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->streams = 1;
	o->downtime_limit_ms = 300;
	o->max_iterations = 30;
	o->max_precopy_s = 120;
	o->transport = "tcp";
	o->timeout_s = 30;
	o->wait_s = 600;
	o->linger_s = -1; /* the timeout, unless given */
	o->outcome_s = -1;
	o->preauth_s = 5;
	o->verify = true;
	o->integrity = true;
}

int vfm_secret_load(struct vfm_mig_opts *o, char *why, size_t whylen)
{
	uint8_t buf[VFM_HS_SECRET_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd;

	if (!o->secret_file) {
		snprintf(
			why, whylen,
			"A secret file is required (--secret-file FILE); secrets are never given on the command line.");
		return -EINVAL;
	}
	fd = open(o->secret_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "Cannot open the secret file %s: %s.",
			 o->secret_file, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		vfm_log_msg(
			"secret_file_insecure", "warning",
			"The secret file %s is open to its group or to every user (mode %03o); make it 0600.",
			o->secret_file, (unsigned int)(st.st_mode & 0777));
	if (fstat(fd, &st) == 0 && st.st_uid != geteuid())
		vfm_log_msg(
			"secret_file_insecure", "warning",
			"The secret file %s belongs to uid %u, not to this agent (uid %u).",
			o->secret_file, (unsigned int)st.st_uid,
			(unsigned int)geteuid());
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "Cannot read the secret file %s: %s.",
			 o->secret_file, strerror(errno));
		return -EIO;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0) {
		snprintf(why, whylen, "The secret file %s is empty.",
			 o->secret_file);
		return -EINVAL;
	}
	if (n < VFM_HS_SECRET_MIN || n > VFM_HS_SECRET_MAX) {
		snprintf(why, whylen,
			 "The secret in %s must be %d to %d bytes long.",
			 o->secret_file, VFM_HS_SECRET_MIN, VFM_HS_SECRET_MAX);
		return -EINVAL;
	}
	memcpy(o->secret, buf, (size_t)n);
	o->secret_len = (size_t)n;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static volatile sig_atomic_t cancel_sig;

static void on_cancel(int sig)
{
	cancel_sig = sig;
}

void vfm_eng_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cancel;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a wait in poll() returns at once with EINTR. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int vfm_eng_cancelled(void)
{
	return cancel_sig;
}

static bool has_feature(const struct vfm_desc *d, const char *f)
{
	for (unsigned int i = 0; i < d->nfeatures; i++)
		if (!strcmp(d->features[i], f))
			return true;
	return false;
}

/* Open and describe the device, or every device of a set (dev_set.h). */
int vfm_eng_open_device(struct vfm_eng *e)
{
	struct vfm_dev *m[VFM_SET_MAX] = { 0 };
	unsigned int n = e->o->ndevices ? e->o->ndevices : 1;
	char why[256] = "";
	bool p2p = true;
	int ret = 0;

	e->descs = calloc(n, sizeof(*e->descs));
	if (!e->descs) {
		snprintf(e->why, sizeof(e->why), "Out of memory.");
		return -ENOMEM;
	}
	e->ndev = n;
	for (unsigned int i = 0; !ret && i < n; i++) {
		const char *spec = e->o->ndevices ? e->o->devices[i] :
						    e->o->device;

		ret = vfm_dev_open(spec, &m[i], why, sizeof(why));
		if (ret) {
			if (n > 1)
				snprintf(e->why, sizeof(e->why),
					 "Device %u of the set: %s", i + 1,
					 why);
			else
				snprintf(e->why, sizeof(e->why), "%s", why);
			break;
		}
		vfm_desc_init(&e->descs[i]);
		ret = vfm_dev_describe(m[i], &e->descs[i], why, sizeof(why));
		if (ret)
			snprintf(e->why, sizeof(e->why),
				 "The device %s has no usable descriptor: %s",
				 spec, why);
		p2p = p2p && has_feature(&e->descs[i], "p2p");
	}
	if (!ret && n > 1) {
		/* Without P2P everywhere the handshake refuses the set
		 * (rule set_p2p), before anything stops. */
		ret = vfm_dev_set_new(m, n, p2p, &e->dev);
		if (ret)
			snprintf(e->why, sizeof(e->why),
				 "Cannot build the device set: %s.",
				 strerror(-ret));
		else
			memset(m, 0, sizeof(m));
	} else if (!ret) {
		e->dev = m[0];
		m[0] = NULL;
	}
	for (unsigned int i = 0; i < n; i++)
		vfm_dev_close(m[i]);
	if (!ret)
		e->desc = e->descs[0];
	return ret;
}

void vfm_eng_close_device(struct vfm_eng *e)
{
	vfm_dev_close(e->dev);
	e->dev = NULL;
	free(e->descs);
	e->descs = NULL;
}

int vfm_eng_stream_formats(struct vfm_eng *e)
{
	for (unsigned int i = 0; i < vfm_dev_set_count(e->dev); i++) {
		const struct vfm_desc *src, *dst;
		const struct vfm_verdict *v;
		unsigned int f;
		int ret = vfm_hs_member(e->hs, i, &src, &dst, &v);

		if (ret)
			return ret;
		f = vfm_stream_format_pick(src, dst);
		ret = vfm_dev_set_stream_format(vfm_dev_set_member(e->dev, i),
						f);
		if (ret) {
			snprintf(
				e->why, sizeof(e->why),
				"The device %s cannot use the negotiated stream format %u: %s.",
				vfm_dev_set_member(e->dev, i)->spec, f,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int vfm_eng_timeout_ms(const struct vfm_eng *e)
{
	return (int)(e->o->timeout_s * 1000);
}

static int hs_flush(struct vfm_eng *e)
{
	const uint8_t *out;
	size_t n = vfm_hs_output(e->hs, &out);
	int ret;

	if (!n)
		return 0;
	ret = vfm_conn_send(&e->conn, out, n, vfm_eng_timeout_ms(e));
	if (!ret)
		vfm_hs_consumed(e->hs, n);
	return ret;
}

int vfm_eng_handshake(struct vfm_eng *e, const struct vfm_hs_cfg *cfg)
{
	struct vfm_err err;
	int ret;

	vfm_err_clear(&err);
	ret = vfm_hs_new(&e->hs, cfg, &err);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The handshake cannot start: %s", err.msg);
		return ret;
	}
	ret = vfm_hs_start(e->hs);
	while (!ret) {
		const uint8_t *frame;
		size_t len;

		ret = hs_flush(e);
		if (ret) {
			snprintf(e->why, sizeof(e->why),
				 "The handshake with %s failed: %s.",
				 e->conn.peer, strerror(-ret));
			return ret;
		}
		if (vfm_hs_done(e->hs))
			return 0;
		if (vfm_hs_failed(e->hs))
			break;
		ret = vfm_conn_recv(&e->conn, vfm_eng_timeout_ms(e), &frame,
				    &len);
		if (ret == 0)
			ret = -ETIMEDOUT;
		if (ret < 0) {
			if (ret == -ETIMEDOUT)
				snprintf(
					e->why, sizeof(e->why),
					"The peer %s did not answer the handshake within %.0f s.",
					e->conn.peer, e->o->timeout_s);
			else if (ret == -EBADMSG || ret == -EMSGSIZE)
				snprintf(
					e->why, sizeof(e->why),
					"The peer %s does not speak the vfmig protocol: %s.",
					e->conn.peer, e->conn.why);
			else
				snprintf(e->why, sizeof(e->why),
					 "The handshake with %s failed: %s",
					 e->conn.peer,
					 e->conn.why[0] ? e->conn.why :
							  strerror(-ret));
			return ret;
		}
		ret = vfm_hs_recv(e->hs, frame, len);
	}
	hs_flush(e); /* the ABORT that tells the peer why, best effort */
	ret = vfm_hs_error(e->hs);
	snprintf(e->why, sizeof(e->why), "The handshake with %s failed: %s",
		 e->conn.peer, vfm_hs_reason(e->hs));
	return ret ? ret : -EPROTO;
}

static char *desc_json(const struct vfm_desc *d)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	if (!f)
		return NULL;
	vfm_desc_print_json(f, d);
	fclose(f);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	return s;
}

unsigned int vfm_eng_verdict_failures(struct vfm_eng *e)
{
	unsigned int failed = 0;

	for (unsigned int k = 0; k < vfm_hs_set_size(e->hs); k++) {
		const struct vfm_desc *ms, *md;
		const struct vfm_verdict *mv;

		if (!vfm_hs_member(e->hs, k, &ms, &md, &mv))
			failed += vfm_verdict_failures(mv);
	}
	return failed;
}

void vfm_eng_log_verdict(struct vfm_eng *e)
{
	const struct vfm_verdict *v = vfm_hs_verdict(e->hs);
	const struct vfm_offer *off = vfm_hs_offer(e->hs);
	const struct vfm_desc *src, *dst;
	struct vfm_json *j = malloc(sizeof(*j));
	char *sj, *dj, line[512];
	unsigned int failed = vfm_eng_verdict_failures(e);

	if (!j)
		return;
	if (!strcmp(e->role, "source")) {
		src = &e->desc;
		dst = vfm_hs_peer_desc(e->hs);
	} else {
		src = &off->desc;
		dst = &e->desc;
	}
	sj = desc_json(src);
	dj = desc_json(dst);
	vfm_json_init(j);
	vfm_json_str(j, "peer", e->conn.peer);
	vfm_json_u64(j, "protocol", vfm_hs_version(e->hs));
	vfm_json_u64(j, "features", vfm_hs_features(e->hs));
	vfm_json_str(j, "transport", off->transport);
	vfm_json_u64(j, "streams", off->streams);
	if (off->nmore)
		vfm_json_u64(j, "devices", off->nmore + 1);
	vfm_json_raw(j, "source_descriptor", sj ? sj : "null");
	vfm_json_raw(j, "destination_descriptor", dj ? dj : "null");
	vfm_log_emit("handshake", j);
	for (unsigned int k = 0; k < vfm_hs_set_size(e->hs); k++) {
		const struct vfm_desc *ms, *md;
		const struct vfm_verdict *mv;

		if (vfm_hs_member(e->hs, k, &ms, &md, &mv))
			break;
		if (vfm_hs_set_size(e->hs) > 1)
			vfm_log_human(" device %u of %u: %s -> %s", k + 1,
				      vfm_hs_set_size(e->hs), ms->model,
				      md->model);
		for (unsigned int i = 0; i < mv->nresults; i++) {
			const struct vfm_rule_result *r = &mv->r[i];
			const char *name = vfm_compat_code_name(r->code);

			vfm_json_init(j);
			vfm_json_str(j, "code", name ? name : "unknown");
			vfm_json_u64(j, "code_num", r->code);
			vfm_json_bool(j, "passed", r->passed);
			vfm_json_str(j, "subject", r->subject);
			vfm_json_str(j, "sentence", r->sentence);
			if (vfm_hs_set_size(e->hs) > 1)
				vfm_json_u64(j, "device_index", k + 1);
			vfm_log_emit("handshake_rule", j);
			vfm_log_human("  %s",
				      vfm_rule_line(r, line, sizeof(line)));
		}
	}
	vfm_json_init(j);
	vfm_json_bool(j, "accept", v->accept);
	vfm_json_u64(j, "failed", failed);
	{
		char notes[4096];
		size_t n = 0;

		/* A note goes in whole or not at all, with room kept for
		 * the closing "]\0". */
		notes[n++] = '[';
		for (unsigned int i = 0; i < v->nnotes; i++) {
			char q[6 * VFM_SENTENCE_MAX + 8];
			size_t qn = 0;

			vfm_json_quote(q, sizeof(q), &qn, v->notes[i]);
			if (n + qn + 3 > sizeof(notes))
				break;
			if (i)
				notes[n++] = ',';
			memcpy(notes + n, q, qn);
			n += qn;
		}
		notes[n++] = ']';
		notes[n] = '\0';
		vfm_json_raw(j, "notes", notes);
	}
	vfm_log_emit("verdict", j);
	vfm_log_human("verdict: %s (%u failed rule%s)",
		      v->accept ? "ACCEPT" : "REFUSE", failed,
		      failed == 1 ? "" : "s");
	free(sj);
	free(dj);
	free(j);
}

int vfm_eng_ctl_send(struct vfm_eng *e, const struct vfm_ctl *m)
{
	size_t len;
	int ret = vfm_ctl_encode(e->hs, m, e->tx, sizeof(e->tx), &len);

	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "Cannot build the %s message: %s.",
			 vfm_ctl_name(m->type), strerror(-ret));
		return ret;
	}
	ret = vfm_conn_send(&e->conn, e->tx, len, vfm_eng_timeout_ms(e));
	if (ret)
		snprintf(e->why, sizeof(e->why), "Cannot send %s to %s: %s.",
			 vfm_ctl_name(m->type), e->conn.peer,
			 ret == -ECONNRESET ? "the peer closed the connection" :
					      strerror(-ret));
	return ret;
}

int vfm_eng_ctl_recv(struct vfm_eng *e, int timeout_ms, struct vfm_ctl *m)
{
	const uint8_t *frame;
	struct vfm_err err;
	size_t len;
	int ret = vfm_conn_recv(&e->conn, timeout_ms, &frame, &len);

	if (ret <= 0) {
		if (ret < 0)
			snprintf(e->why, sizeof(e->why), "%s",
				 e->conn.why[0] ? e->conn.why : strerror(-ret));
		return ret;
	}
	vfm_err_clear(&err);
	ret = vfm_ctl_decode(e->hs, frame, len, m, &err);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "A bad control message from %s: %s.", e->conn.peer,
			 err.msg);
		return ret;
	}
	if (m->type == VFM_CTL_FAIL) {
		snprintf(e->why, sizeof(e->why), "The peer gave up: %s",
			 m->text);
		return -ECANCELED;
	}
	return 1;
}

void vfm_eng_fail(struct vfm_eng *e, uint16_t code, const char *text)
{
	struct vfm_ctl m = { .type = VFM_CTL_FAIL, .code = code };
	char why[sizeof(e->why)];

	if (!e->hs || e->conn.fd < 0 || !vfm_hs_done(e->hs))
		return;
	snprintf(m.text, sizeof(m.text), "%s", text);
	/* Best effort: the failure being reported stays e->why. */
	memcpy(why, e->why, sizeof(why));
	vfm_eng_ctl_send(e, &m);
	memcpy(e->why, why, sizeof(why));
}

void vfm_eng_log_switch(const char *from, const char *on, const char *to,
			unsigned int action)
{
	struct vfm_json j;
	char acts[128];

	vfm_json_init(&j);
	vfm_json_str(&j, "from", from);
	vfm_json_str(&j, "on", on);
	vfm_json_str(&j, "to", to);
	vfm_json_str(&j, "actions",
		     vfm_sw_action_names(action, acts, sizeof(acts)));
	vfm_log_emit("switchover", &j);
}

int vfm_eng_smac_start(struct vfm_eng *e)
{
	uint8_t key[VFM_KEY_LEN], iv[VFM_SMAC_IV_LEN];
	int ret = vfm_hs_stream_key(e->hs, key, iv);

	if (!ret)
		ret = vfm_smac_init(&e->smac, key, iv);
	OPENSSL_cleanse(key, sizeof(key));
	if (ret)
		snprintf(e->why, sizeof(e->why),
			 "Cannot start the stream MAC: %s.", strerror(-ret));
	return ret;
}

int vfm_eng_xport_create(struct vfm_eng *e, struct vfm_xport_cfg *cfg,
			 bool sealed)
{
	uint8_t key[VFM_KEY_LEN];
	int ret;

	/* The data phase begins: the device's set-up is not its cost. */
	e->cpu_t0 = vfm_thread_cpu_s();
	cfg->aead_key = NULL;
	if (sealed) {
		ret = vfm_hs_data_key(e->hs, key);
		if (ret) {
			OPENSSL_cleanse(key, sizeof(key));
			snprintf(e->why, sizeof(e->why),
				 "No key for the data plane: %s.",
				 strerror(-ret));
			return -ENOKEY;
		}
		cfg->aead_key = key;
	}
	ret = e->xops->create(&e->x, cfg);
	OPENSSL_cleanse(key, sizeof(key));
	cfg->aead_key = NULL;
	return ret;
}

double vfm_thread_cpu_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vfm_eng_json_cpu(struct vfm_eng *e, struct vfm_json *j, double other_s)
{
	double xport = e->cpu_xport_s + vfm_xport_thread_cpu_s(e->x);
	double agent = vfm_thread_cpu_s() - e->cpu_t0 + other_s - e->cpu_dev_s;

	vfm_json_f64(j, "cpu_device_s", e->cpu_dev_s);
	vfm_json_f64(j, "cpu_transport_s", xport);
	vfm_json_f64(j, "cpu_agent_s", agent > 0 ? agent : 0);
}

void vfm_eng_xport_teardown(struct vfm_eng *e)
{
	e->cpu_xport_s += vfm_xport_thread_cpu_s(e->x);
	if (e->x && e->mr_reg)
		vfm_xport_dereg(e->x, &e->mr);
	e->mr_reg = false;
	vfm_xport_destroy(e->x);
	e->x = NULL;
}

void vfm_eng_write_stats(struct vfm_eng *e, struct vfm_json *summary)
{
	FILE *f;

	if (!e->o->stats_path)
		return;
	f = fopen(e->o->stats_path, "we");
	if (!f) {
		vfm_log_msg("stats_json", "warning", "Cannot write %s: %s.",
			    e->o->stats_path, strerror(errno));
		return;
	}
	fprintf(f, "%s\n", vfm_json_end(summary));
	fclose(f);
}

/* Test hooks at named points of a migration:
 *   VFMIG_TEST_CRASH=<point>       SIGKILL to this process there;
 *   VFMIG_TEST_HOLD=<point>:<file> there (the first time), create <file>
 *                                  and wait until it is removed (30 s at
 *                                  most), so a test can act on the real
 *                                  processes and sockets at that moment. */
void vfm_eng_crash_point(const char *point)
{
	const char *want = getenv("VFMIG_TEST_CRASH");
	const char *hold = getenv("VFMIG_TEST_HOLD");
	static bool held;
	size_t n = strlen(point);

	if (want && !strcmp(want, point)) {
		vfm_log_msg("test_crash", "warning", "Test hook: dying at %s.",
			    point);
		raise(SIGKILL);
	}
	if (hold && !held && !strncmp(hold, point, n) && hold[n] == ':') {
		const char *file = hold + n + 1;
		double until = vfm_now_ms() + 30000;
		int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		held = true;
		if (fd >= 0)
			close(fd);
		vfm_log_msg("test_hold", "warning", "Test hook: held at %s.",
			    point);
		while (access(file, F_OK) == 0 && vfm_now_ms() < until)
			poll(NULL, 0, 10);
	}
}

void vfm_eng_json_device(struct vfm_eng *e, struct vfm_json *j, bool digest)
{
	uint32_t st = VFIO_DEVICE_STATE_ERROR;
	char hex[VFM_DIGEST_HEX] = "";

	vfm_dev_get_state(e->dev, &st);
	vfm_json_str(j, "device", e->o->device);
	vfm_json_str(j, "state", vfm_dev_state_name(st));
	if (digest && !vfm_dev_digest(e->dev, hex))
		vfm_json_str(j, "state_digest", hex);
	vfm_dev_set_json(e->dev, j);
}
