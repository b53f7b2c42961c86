// SPDX-License-Identifier: MIT
/*
 * The switchover state machines, exhausted: a model of the two agents, the
 * control connection and the devices runs the real tables (proto/
 * switchover.c) through every interleaving, with at most one fault injected
 * at every point: either agent crashing, a connection reset (the network
 * healing for the outcome query, or not), a black hole (timeouts), a
 * cancel signal to either side, a corrupt state, a destination that cannot
 * start, a load slower than every timeout. After every step: never both
 * devices running the migrated state. At the end: the source resumed
 * whenever the destination provably did not and will not run, and a
 * fault-free run migrates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vfm/switchover.h"

enum msg { M_NONE, M_DONE, M_LOADED, M_LOADED_BAD, M_RUN, M_COMMIT, M_FAIL };

enum fault {
	F_NONE,
	F_CRASH_SRC,
	F_CRASH_DST,
	F_RESET, /* connection reset; the network works for a new one */
	F_PARTITION, /* black hole: nothing gets through any more */
	F_CANCEL_SRC,
	F_CANCEL_DST,
	F_CORRUPT, /* the loaded state differs from the source's */
	F_START_FAIL, /* STOP->RUNNING fails at the destination */
	F_SLOW_LOAD, /* the source times out while the destination loads */
	F_NFAULTS
};

enum dev { DEV_RUNNING, DEV_STOPPED, DEV_RESET, DEV_MIGRATED_RUNNING };

#define QMAX 8

struct world {
	enum fault fault; /* the one fault of this run */
	bool injected;
	int src, dst; /* states */
	bool src_dead, dst_dead;
	enum dev sdev, ddev;
	bool link_down; /* the control connection is gone */
	bool src_fault_pending, dst_fault_pending; /* they will notice */
	enum msg q_sd[QMAX], q_ds[QMAX];
	int n_sd, n_ds;
	bool dst_got_done;
	bool dst_loaded_once;
	int steps;
};

static unsigned long paths, checks;

static void push(enum msg *q, int *n, enum msg m, bool link_down)
{
	if (link_down)
		return;
	assert_true(*n < QMAX);
	q[(*n)++] = m;
}

static enum msg pop(enum msg *q, int *n)
{
	enum msg m = q[0];

	memmove(q, q + 1, sizeof(*q) * (size_t)(*n - 1));
	(*n)--;
	return m;
}

static void check_invariant(const struct world *w)
{
	checks++;
	if (w->sdev == DEV_RUNNING && w->ddev == DEV_MIGRATED_RUNNING)
		fail_msg("both running: fault %d src %s dst %s", w->fault,
			 vfm_sw_src_state_name(w->src),
			 vfm_sw_dst_state_name(w->dst));
}

static void dst_event(struct world *w, enum vfm_sw_dst_event e);

/* The source asks the lingering destination, over a new connection. */
static enum vfm_sw_src_event query(struct world *w)
{
	if (w->dst_dead || w->fault == F_PARTITION)
		return VFM_SW_SE_QUERY_EXPIRED;
	dst_event(w, VFM_SW_DE_QUERY);
	return w->dst == VFM_SW_D_RUNNING ? VFM_SW_SE_COMMITTED :
					    VFM_SW_SE_ABORTED;
}

static void src_event(struct world *w, enum vfm_sw_src_event e)
{
	for (int guard = 0; guard < 8 && !w->src_dead; guard++) {
		struct vfm_sw_step st = vfm_sw_src_step(w->src, e);
		unsigned int a = st.action;

		w->src = st.next;
		if (a & VFM_SW_A_STOP_DEVICE) {
			w->sdev = DEV_STOPPED;
			push(w->q_sd, &w->n_sd, M_DONE, w->link_down);
		}
		if (a & VFM_SW_A_RESUME)
			w->sdev = DEV_RUNNING;
		check_invariant(w);
		if (a & VFM_SW_A_SEND_RUN)
			push(w->q_sd, &w->n_sd, M_RUN, w->link_down);
		if (a & VFM_SW_A_SEND_FAIL)
			push(w->q_sd, &w->n_sd, M_FAIL, w->link_down);
		if (!(a & VFM_SW_A_QUERY))
			return;
		e = query(w);
	}
}

static void dst_event(struct world *w, enum vfm_sw_dst_event e)
{
	if (w->dst_dead)
		return;
	for (int guard = 0; guard < 4; guard++) {
		struct vfm_sw_step st = vfm_sw_dst_step(w->dst, e);
		unsigned int a = st.action;

		w->dst = st.next;
		if (a & VFM_SW_A_RESET)
			w->ddev = DEV_RESET;
		if (a & VFM_SW_A_SEND_LOADED) {
			w->ddev = DEV_STOPPED;
			push(w->q_ds, &w->n_ds,
			     w->fault == F_CORRUPT ? M_LOADED_BAD : M_LOADED,
			     w->link_down);
		}
		if (a & VFM_SW_A_SEND_FAIL)
			push(w->q_ds, &w->n_ds, M_FAIL, w->link_down);
		check_invariant(w);
		if (!(a & VFM_SW_A_START))
			return;
		if (w->fault == F_START_FAIL) {
			e = VFM_SW_DE_START_FAILED;
			continue;
		}
		w->ddev = DEV_MIGRATED_RUNNING;
		check_invariant(w);
		push(w->q_ds, &w->n_ds, M_COMMIT, w->link_down);
		return;
	}
}

/* The connection breaks: queued messages are lost, both will notice. */
static void cut(struct world *w)
{
	w->link_down = true;
	w->n_sd = w->n_ds = 0;
	w->src_fault_pending = !w->src_dead;
	w->dst_fault_pending = !w->dst_dead;
}

static void end_of_path(const struct world *w)
{
	paths++;
	check_invariant(w);
	if (w->fault == F_NONE) {
		assert_int_equal(w->src, VFM_SW_S_MIGRATED);
		assert_int_equal(w->dst, VFM_SW_D_RUNNING);
		assert_int_equal(w->ddev, DEV_MIGRATED_RUNNING);
		return;
	}
	if (w->src_dead)
		return;
	assert_true(vfm_sw_src_final(w->src));
	/* The destination provably did not and will not run: it aborted
	 * and can be asked. Then the source must run again. */
	if (!w->dst_dead && w->dst == VFM_SW_D_ABORTED &&
	    w->fault != F_PARTITION)
		assert_int_equal(w->src, VFM_SW_S_RESUMED);
	if (w->src == VFM_SW_S_MIGRATED)
		assert_true(w->ddev == DEV_MIGRATED_RUNNING ||
			    w->dst == VFM_SW_D_RUNNING);
	if (w->src == VFM_SW_S_RESUMED)
		assert_int_equal(w->sdev, DEV_RUNNING);
	else
		assert_int_not_equal(w->sdev, DEV_RUNNING);
	/* Unknown only when nobody could answer. */
	if (w->src == VFM_SW_S_UNKNOWN)
		assert_true(w->dst_dead || w->fault == F_PARTITION);
}

static void explore(struct world w);

static void inject(struct world w)
{
	w.injected = true;
	switch (w.fault) {
	case F_CRASH_SRC:
		w.src_dead = true;
		if (w.sdev == DEV_RUNNING)
			w.sdev = DEV_STOPPED; /* the process holds the device */
		cut(&w);
		break;
	case F_CRASH_DST:
		w.dst_dead = true;
		cut(&w);
		break;
	case F_RESET:
	case F_PARTITION:
		cut(&w);
		break;
	case F_CANCEL_SRC:
		src_event(&w, VFM_SW_SE_CANCEL);
		break;
	case F_CANCEL_DST:
		dst_event(&w, VFM_SW_DE_CANCEL);
		break;
	case F_SLOW_LOAD:
		/* The source's wait for LOADED ends; it closes. */
		if (w.src != VFM_SW_S_STOPPED || w.dst != VFM_SW_D_RECEIVING)
			return;
		src_event(&w, VFM_SW_SE_FAULT);
		cut(&w);
		w.src_fault_pending = false;
		break;
	default:
		return; /* acts inside the steps */
	}
	explore(w);
}

static void explore(struct world w)
{
	bool moved = false;

	assert_true(++w.steps < 64);
	if (!w.injected && w.fault != F_NONE && w.fault != F_CORRUPT &&
	    w.fault != F_START_FAIL)
		inject(w);
	/* The source stops once, at the start. */
	if (w.src == VFM_SW_S_PRECOPY && !w.src_dead) {
		struct world n = w;

		src_event(&n, VFM_SW_SE_STOP);
		explore(n);
		moved = true;
	}
	if (w.n_sd && !w.dst_dead) {
		struct world n = w;
		enum msg m = pop(n.q_sd, &n.n_sd);

		if (m == M_DONE)
			n.dst_got_done = true;
		else if (m == M_RUN)
			dst_event(&n, VFM_SW_DE_RUN);
		else if (m == M_FAIL)
			dst_event(&n, VFM_SW_DE_SRC_FAIL);
		explore(n);
		moved = true;
	}
	if (w.n_ds && !w.src_dead) {
		struct world n = w;
		enum msg m = pop(n.q_ds, &n.n_ds);

		if (m == M_LOADED)
			src_event(&n, VFM_SW_SE_LOADED_OK);
		else if (m == M_LOADED_BAD)
			src_event(&n, VFM_SW_SE_LOADED_BAD);
		else if (m == M_COMMIT)
			src_event(&n, VFM_SW_SE_COMMITTED);
		else if (m == M_FAIL)
			src_event(&n, VFM_SW_SE_ABORTED);
		explore(n);
		moved = true;
	}
	/* The destination verifies what it loaded (a slow load may finish
	 * after the source gave up). */
	if (w.dst_got_done && !w.dst_loaded_once && !w.dst_dead &&
	    w.dst == VFM_SW_D_RECEIVING) {
		struct world n = w;

		n.dst_loaded_once = true;
		dst_event(&n, VFM_SW_DE_LOAD_OK);
		explore(n);
		moved = true;
	}
	if (w.src_fault_pending) {
		struct world n = w;

		n.src_fault_pending = false;
		src_event(&n, VFM_SW_SE_FAULT);
		explore(n);
		moved = true;
	}
	if (w.dst_fault_pending) {
		struct world n = w;

		n.dst_fault_pending = false;
		dst_event(&n, VFM_SW_DE_FAULT);
		explore(n);
		moved = true;
	}
	if (moved)
		return;
	/* Nothing can move: whoever still waits times out. */
	if ((!w.src_dead && !vfm_sw_src_final(w.src)) ||
	    (!w.dst_dead && !vfm_sw_dst_final(w.dst))) {
		struct world n = w;

		cut(&n);
		if (vfm_sw_src_final(n.src))
			n.src_fault_pending = false;
		if (vfm_sw_dst_final(n.dst))
			n.dst_fault_pending = false;
		if (n.src_fault_pending || n.dst_fault_pending) {
			explore(n);
			return;
		}
	}
	end_of_path(&w);
}

static void run_fault(enum fault f)
{
	struct world w = { .fault = f,
			   .src = VFM_SW_S_PRECOPY,
			   .dst = VFM_SW_D_RECEIVING,
			   .sdev = DEV_RUNNING,
			   .ddev = DEV_STOPPED };

	explore(w);
}

/* Faults injected at every point: inject() is tried before every step. */
static void test_every_single_fault(void **state)
{
	(void)state;
	for (int f = 0; f < F_NFAULTS; f++) {
		unsigned long before = paths;

		run_fault((enum fault)f);
		assert_true(paths > before);
	}
	printf("# switchover: %lu paths, %lu invariant checks\n", paths,
	       checks);
}

/* Every (state, event) pair has an entry that stays in range. */
static void test_tables_total(void **state)
{
	char buf[128];

	(void)state;
	for (int s = 0; s < VFM_SW_S_NSTATES; s++)
		for (int e = 0; e < VFM_SW_SE_NEVENTS; e++) {
			struct vfm_sw_step st = vfm_sw_src_step(s, e);

			assert_true(st.next >= 0 && st.next < VFM_SW_S_NSTATES);
			/* Nothing leaves a final state. */
			if (vfm_sw_src_final(s))
				assert_int_equal(st.next, s);
			/* No resume after the point of no return unless the
			 * destination said it aborted. */
			if (vfm_sw_src_committed(s) &&
			    (st.action & VFM_SW_A_RESUME))
				assert_int_equal(e, VFM_SW_SE_ABORTED);
			assert_non_null(vfm_sw_action_names(st.action, buf,
							    sizeof(buf)));
		}
	for (int s = 0; s < VFM_SW_D_NSTATES; s++)
		for (int e = 0; e < VFM_SW_DE_NEVENTS; e++) {
			struct vfm_sw_step st = vfm_sw_dst_step(s, e);

			assert_true(st.next >= 0 && st.next < VFM_SW_D_NSTATES);
			/* Only RUN starts the device, and only from LOADED. */
			if (st.action & VFM_SW_A_START)
				assert_true(s == VFM_SW_D_LOADED &&
					    e == VFM_SW_DE_RUN);
			if (s == VFM_SW_D_ABORTED)
				assert_int_equal(st.next, VFM_SW_D_ABORTED);
		}
	assert_string_equal(vfm_sw_action_names(VFM_SW_A_RESUME |
							VFM_SW_A_SEND_FAIL,
						buf, sizeof(buf)),
			    "resume|send_fail");
	assert_string_equal(vfm_sw_src_state_name(99), "invalid");
}

/* The tables the README prints: cancel after the point of no return is
 * ignored; a query in LOADED aborts for good. */
static void test_named_arcs(void **state)
{
	struct vfm_sw_step st;

	(void)state;
	st = vfm_sw_src_step(VFM_SW_S_GO, VFM_SW_SE_CANCEL);
	assert_int_equal(st.next, VFM_SW_S_GO);
	st = vfm_sw_src_step(VFM_SW_S_STOPPED, VFM_SW_SE_CANCEL);
	assert_int_equal(st.next, VFM_SW_S_RESUMED);
	assert_true(st.action & VFM_SW_A_RESUME);
	st = vfm_sw_src_step(VFM_SW_S_GO, VFM_SW_SE_FAULT);
	assert_int_equal(st.next, VFM_SW_S_QUERY);
	st = vfm_sw_src_step(VFM_SW_S_QUERY, VFM_SW_SE_QUERY_EXPIRED);
	assert_int_equal(st.next, VFM_SW_S_UNKNOWN);
	st = vfm_sw_dst_step(VFM_SW_D_LOADED, VFM_SW_DE_QUERY);
	assert_int_equal(st.next, VFM_SW_D_ABORTED);
	assert_true(st.action & VFM_SW_A_RESET);
	st = vfm_sw_dst_step(VFM_SW_D_ABORTED, VFM_SW_DE_RUN);
	assert_int_equal(st.next, VFM_SW_D_ABORTED);
	assert_false(st.action & VFM_SW_A_START);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_total),
		cmocka_unit_test(test_named_arcs),
		cmocka_unit_test(test_every_single_fault),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
