/* fuseloop: the multi-threaded FUSE loop on every libfuse jobfs builds with.
 *
 * libfuse 3.12 made the loop's configuration an opaque object
 * (fuse_loop_cfg_create/_set_max_threads) and capped worker threads at 10
 * unless told otherwise; 3.10, which RHEL 9 and Ubuntu 22.04 class login
 * nodes run, has a public two-field struct and no cap at all. This module
 * hides the difference (meson finds which one is there: HAVE_FUSE_LOOP_CFG)
 * so that main.c asks for what it needs and stays free of #ifs. On 3.10 and
 * 3.11 the cap cannot be set: it logs that once, at info level, and runs
 * without one (more threads under load, never fewer).
 */
#pragma once
#include <fuse_lowlevel.h>

/* Runs the loop of a mounted session until it exits, with at most
 * max_threads workers where libfuse can cap them (workers may wait on the
 * network, so jobfs wants many). Returns 0, or -errno if the loop failed. */
int fuseloop_run(struct fuse_session *se, unsigned max_threads);
