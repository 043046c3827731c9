/*
 * Testing your own code on rlog's simulator (docs/simulator.md, "Testing
 * your own code"). The code under test is an "atomic save": replace
 * /d/config with new contents so that a crash leaves either the old or the
 * new contents, never anything else. save_buggy renames the temp file
 * before syncing it; save_fixed syncs first. The crash-point helper crashes
 * each of them before every vfs call in turn; the seed loop runs the
 * fixed one on 200 seeds with a whole-run check.
 *
 *   ./build/examples/sim_user            prints what it finds; exit 0 when the
 *                                        bug is found and the fix holds
 *   ./build/examples/sim_user --seed S   replays one seed of the seed loop
 *
 * tests/sim_user_test.c includes this file (SIM_USER_NO_MAIN) and checks
 * the same findings, so the documented example cannot rot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/sim.h"

static const char OLD[] = "version=1\n";
static const char NEW[] = "version=2, with a longer line\n";

/* Writes `len` bytes to a new file `path` (replacing it); syncs when asked. */
static int write_file(rlog_vfs *vfs, const char *path, const char *data, size_t len, int sync)
{
    rlog_file *f;
    size_t done;
    int e = vfs->open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f);
    if (e)
        return e;
    if (!(e = vfs->truncate(vfs, f, 0)) && !(e = vfs->pwrite(vfs, f, data, len, 0, &done)) && sync)
        e = vfs->fsync(vfs, f);
    int c = vfs->close(vfs, f);
    return e ? e : c;
}

/* The bug: the rename may reach the disk before the data does. */
static int save_buggy(rlog_vfs *vfs, const char *data, size_t len)
{
    rlog_file *f;
    size_t done;
    int e = vfs->open(vfs, "/d/config.tmp", RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f);
    if (e)
        return e;
    if (!(e = vfs->pwrite(vfs, f, data, len, 0, &done)) &&
        !(e = vfs->rename(vfs, "/d/config.tmp", "/d/config")))
        e = vfs->fsync(vfs, f);
    int c = vfs->close(vfs, f);
    if (!e && !c)
        e = vfs->sync_dir(vfs, "/d");
    return e ? e : c;
}

/* The fix: data durable first, then the rename, then the directory. */
static int save_fixed(rlog_vfs *vfs, const char *data, size_t len)
{
    int e = write_file(vfs, "/d/config.tmp", data, len, 1);
    if (!e)
        e = vfs->rename(vfs, "/d/config.tmp", "/d/config");
    if (!e)
        e = vfs->sync_dir(vfs, "/d");
    return e;
}

/* ---- the callbacks (rlog_sim_fn: 0 passes) ---- */

static int setup(rlog_sim_ctx *c, void *user)
{
    (void)user;
    if (write_file(c->vfs, "/d/config", OLD, sizeof OLD - 1, 1) || c->vfs->sync_dir(c->vfs, "/d"))
        return rlog_sim_failf(c, "cannot write the first version");
    return 0;
}

static int op_buggy(rlog_sim_ctx *c, void *user)
{
    (void)user;
    return save_buggy(c->vfs, NEW, sizeof NEW - 1);
}

static int op_fixed(rlog_sim_ctx *c, void *user)
{
    (void)user;
    return save_fixed(c->vfs, NEW, sizeof NEW - 1);
}

/* After a crash, as a new process: /d/config holds one version, whole. */
static int check(rlog_sim_ctx *c, void *user)
{
    (void)user;
    char buf[128];
    size_t done = 0;
    uint64_t size = 0;
    rlog_file *f;
    if (c->vfs->open(c->vfs, "/d/config", RLOG_VFS_RDONLY, &f))
        return rlog_sim_failf(c, "/d/config is missing");
    int e = c->vfs->size(c->vfs, f, &size);
    if (!e && size <= sizeof buf)
        e = c->vfs->pread(c->vfs, f, buf, (size_t)size, 0, &done);
    c->vfs->close(c->vfs, f);
    if (e || size > sizeof buf)
        return rlog_sim_failf(c, "cannot read /d/config (%d, %llu bytes)", e,
                              (unsigned long long)size);
    if ((done == sizeof OLD - 1 && !memcmp(buf, OLD, done)) ||
        (done == sizeof NEW - 1 && !memcmp(buf, NEW, done)))
        return 0;
    return rlog_sim_failf(c, "/d/config holds %zu bytes that are neither version", done);
}

/* Crash points of one save: 0 when every point passed. */
static int crash_test(rlog_sim_fn op, uint64_t seed, rlog_sim_crash_result *res)
{
    rlog_sim_crash_options o;
    rlog_sim_crash_options_init(&o, seed);
    o.mkdir = "/d";
    o.setup = setup;
    o.operation = op;
    o.check = check;
    int rv = rlog_sim_crash_points(&o, NULL, res);
    return rv ? rv : (int)(res->failed != 0);
}

/* One seed of the whole-run test: a few saves, a power loss, the check. */
static int seed_run(rlog_sim_ctx *c, void *user)
{
    (void)user;
    if (setup(c, NULL))
        return 1;
    uint64_t saves = 1 + rlog_sim_rng_below(&c->rng, 4);
    for (uint64_t i = 0; i < saves; i++)
        if (save_fixed(c->vfs, i % 2 ? OLD : NEW, i % 2 ? sizeof OLD - 1 : sizeof NEW - 1))
            return rlog_sim_failf(c, "save %llu failed", (unsigned long long)i);
    rlog_simfs_halt_after(c->vfs, rlog_sim_rng_below(&c->rng, 8)); /* dies inside a save */
    save_fixed(c->vfs, NEW, sizeof NEW - 1);
    rlog_simfs_power_loss(c->vfs);
    return check(c, NULL);
}

static int seed_test(uint64_t from, uint64_t count, unsigned jobs, rlog_sim_seeds_result *res)
{
    rlog_sim_seeds_options o;
    rlog_sim_seeds_options_init(&o);
    o.from = from;
    o.count = count;
    o.jobs = jobs;
    o.mkdir = "/d";
    o.replay = "./build/examples/sim_user --seed {seed}";
    int rv = rlog_sim_seeds(&o, seed_run, NULL, res);
    return rv ? rv : (int)(res->failed != 0);
}

#ifndef SIM_USER_NO_MAIN
int main(int argc, char **argv)
{
    rlog_sim_seeds_result s;
    if (argc == 3 && !strcmp(argv[1], "--seed")) { /* a replay line */
        int rv = seed_test(strtoull(argv[2], NULL, 0), 1, 1, &s);
        rlog_sim_seeds_print(&s, stdout);
        rlog_sim_seeds_release(&s);
        return rv != 0;
    }
    rlog_sim_crash_result r;
    int buggy = crash_test(op_buggy, 1, &r);
    printf("save_buggy: %llu calls, %llu crash points, %llu failed\n", (unsigned long long)r.calls,
           (unsigned long long)r.points, (unsigned long long)r.failed);
    if (buggy == 1)
        printf("  first: %s before call %llu (%s), after %s: %s\n",
               r.first.kind == RLOG_SIM_CRASH_POWER ? "power loss" : "crash",
               (unsigned long long)r.first.k, r.first.call, r.first.previous, r.first.message);
    int fixed = crash_test(op_fixed, 1, &r);
    printf("save_fixed: %llu calls, %llu crash points, %llu failed\n", (unsigned long long)r.calls,
           (unsigned long long)r.points, (unsigned long long)r.failed);

    int seeds = seed_test(1, 200, 2, &s);
    rlog_sim_seeds_print(&s, stdout);
    rlog_sim_seeds_release(&s);
    return buggy == 1 && fixed == 0 && seeds == 0 ? 0 : 1;
}
#endif
