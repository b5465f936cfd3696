/* ferry-sim: flags, named scenarios, and the run. A scenario sets defaults;
 * flags given explicitly override them, whatever their order. */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

static const char usage[] =
    "usage: ferry-sim [flags]\n"
    "Runs real ferry engines on a simulated medium in virtual time. Same flags\n"
    "and seed, same output, byte for byte. See docs/SIMULATOR.md.\n"
    "\n"
    "  --scenario NAME        late-joiner | disaster | contacts | scale | adversary\n"
    "                         (defaults below)\n"
    "  --topology T           line | grid | random | contacts\n"
    "  --nodes N              number of nodes\n"
    "  --radius R             random: link range; nodes are uniform in a square of side\n"
    "                         sqrt(N), one node per unit area, so mean degree ~ pi R^2\n"
    "  --contact-rate B       contacts: meetings per pair per second (Poisson)\n"
    "  --contact-duration S   contacts: seconds a meeting's link stays up\n"
    "  --loss P               probability a receiver misses a frame\n"
    "  --dup P                probability a received frame arrives twice\n"
    "  --latency MS           fixed link delay in milliseconds\n"
    "  --bitrate BPS          adds frame bits / BPS to the delay (0: none)\n"
    "  --mtu BYTES            largest frame on a link; bigger ones are fragmented\n"
    "  --churn P              fraction of nodes that leave once and come back\n"
    "  --crashes K            nodes whose engine crashes and restarts from its store\n"
    "  --partition none|halves  cut the left and right halves apart from the start\n"
    "  --heal S               when the partition heals (default: half the duration)\n"
    "  --messages M           messages in the workload\n"
    "  --workload random|first-to-last  random pairs, or node 0 to the last node\n"
    "  --send-start S         messages go out at uniform times in [start, end]\n"
    "  --send-end S           (default end: half the duration)\n"
    "  --late-join S          the last node is offline until S seconds\n"
    "  --duration S           virtual seconds to run\n"
    "  --lifetime S           message lifetime (default: the duration)\n"
    "  --seed N               the one seed everything derives from\n"
    "  --policy ferry|naive   relay policy of the engines\n"
    "  --no-purge             ferry without purging copies on receipts\n"
    "  --naive-round S        naive policy: resend period (default 30)\n"
    "  --until-acked          stop once every receipt reached its sender\n"
    "  --dedupe-capacity N    ids each engine remembers (power of two; default: the\n"
    "                         engine's own)\n"
    "  --hops N               hop budget of new messages (1-255; default: the engine's)\n"
    "  --max-events N         stop after N events (a safety bound)\n"
    "  --adversary KIND[:K]   K (1) nodes of KIND: forge-receipts | replay | flood |\n"
    "                         forge-announce | tamper | all (one of each); repeatable\n"
    "  --idle-adversaries     pick the adversary nodes but let them behave (a baseline)\n"
    "  --flood-messages N     messages each flooder sends (2000)\n"
    "  --json                 print one JSON object\n"
    "  --bench                print wall time and events/s to stderr\n"
    "  --verbose              list undelivered and unpurged messages to stderr\n"
    "  --help                 this text\n"
    "\n"
    "scenarios:\n"
    "  late-joiner  line of 5; node 0 sends to node 4, which joins after 600 s\n"
    "  disaster     200 nodes, random graph, 20% loss, churn, crashes, halves\n"
    "               partition healing half-way through one virtual hour\n"
    "  contacts     50 nodes meeting pairwise (homogeneous mixing), 1 s contacts\n"
    "  scale        1000 nodes, random graph, one virtual hour, light workload\n"
    "  adversary    100 nodes, random graph, 10% loss, crashes, MTU 64, half an hour;\n"
    "               one adversary of each kind unless --adversary says otherwise\n";

static void defaults(sim_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->scenario, sizeof o->scenario, "custom");
    o->topology = SIM_TOPO_RANDOM;
    o->nodes = 100;
    o->radius = 1.9;
    o->contact_rate = 0.001;
    o->contact_duration_s = 1.0;
    o->latency_ms = 10;
    o->mtu = 255;
    o->partition = SIM_PART_NONE;
    o->heal_s = -1;
    o->messages = 50;
    o->workload = SIM_WL_RANDOM;
    o->send_start_s = 0;
    o->send_end_s = -1;
    o->duration_s = 3600;
    o->lifetime_s = -1;
    o->seed = 1;
    o->policy = FE_POLICY_FERRY;
    o->purge = 1;
    o->naive_round_s = 30;
    o->max_events = 2000000000ull;
    o->flood_messages = 2000;
}

static int scenario(sim_opts *o, const char *name)
{
    if (strlen(name) >= sizeof o->scenario)
        return -1;
    if (strcmp(name, "late-joiner") == 0) {
        o->topology = SIM_TOPO_LINE;
        o->nodes = 5;
        o->messages = 1;
        o->workload = SIM_WL_FIRST_TO_LAST;
        o->send_start_s = o->send_end_s = 10;
        o->late_join_s = 600;
        o->duration_s = 3600;
        o->until_acked = 1;
    } else if (strcmp(name, "disaster") == 0) {
        o->topology = SIM_TOPO_RANDOM;
        o->nodes = 200;
        o->radius = 1.9; /* mean degree about 10 with border effects */
        o->loss = 0.2;
        o->churn = 0.1;
        o->crashes = 5;
        o->partition = SIM_PART_HALVES;
        o->duration_s = 3600;
        o->heal_s = 1800;
        o->messages = 100;
        o->send_start_s = 60;
        o->send_end_s = 1200;
        o->lifetime_s = 7200; /* outlasts the partition */
    } else if (strcmp(name, "contacts") == 0) {
        o->topology = SIM_TOPO_CONTACTS;
        o->nodes = 50;
        o->contact_rate = 1.0 / 3600;
        o->contact_duration_s = 1;
        o->latency_ms = 1;
        o->mtu = FE_FRAME_MAX;
        o->messages = 200;
        o->duration_s = 8 * 3600;
        o->lifetime_s = 4 * 3600;
        o->send_start_s = 0;
        o->send_end_s = 4 * 3600;
    } else if (strcmp(name, "adversary") == 0) {
        o->topology = SIM_TOPO_RANDOM;
        o->nodes = 100;
        o->radius = 1.9;
        o->loss = 0.1;
        o->crashes = 3;
        o->mtu = 64; /* messages travel as fragments, for the tamperer to cut */
        o->duration_s = 1800;
        o->lifetime_s = 1800;
        o->messages = 100;
        o->send_start_s = 60;
        o->send_end_s = 900;
    } else if (strcmp(name, "scale") == 0) {
        o->topology = SIM_TOPO_RANDOM;
        o->nodes = 1000;
        o->radius = 1.9;
        o->duration_s = 3600;
        o->messages = 100;
        o->send_start_s = 0;
        o->send_end_s = 1800;
    } else {
        return -1;
    }
    snprintf(o->scenario, sizeof o->scenario, "%s", name);
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t *out, uint32_t max)
{
    uint64_t v;
    if (parse_u64(s, &v) < 0 || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int prob(double p)
{
    return p >= 0.0 && p <= 1.0;
}

/* Apply one flag (with its value, if it takes one). Returns how many argv
 * entries it used, or -1. */
static int flag(sim_opts *o, const char *f, const char *v)
{
    double d;
#define NEEDV                                                                                      \
    do {                                                                                           \
        if (!v)                                                                                    \
            return -1;                                                                             \
    } while (0)
    if (strcmp(f, "--json") == 0) {
        o->json = 1;
        return 1;
    } else if (strcmp(f, "--bench") == 0) {
        o->bench = 1;
        return 1;
    } else if (strcmp(f, "--no-purge") == 0) {
        o->purge = 0;
        return 1;
    } else if (strcmp(f, "--verbose") == 0) {
        o->verbose = 1;
        return 1;
    } else if (strcmp(f, "--until-acked") == 0) {
        o->until_acked = 1;
        return 1;
    } else if (strcmp(f, "--idle-adversaries") == 0) {
        o->adv_idle = 1;
        return 1;
    }
    NEEDV;
    if (strcmp(f, "--scenario") == 0) {
        return 2; /* applied before the other flags */
    } else if (strcmp(f, "--topology") == 0) {
        if (strcmp(v, "line") == 0)
            o->topology = SIM_TOPO_LINE;
        else if (strcmp(v, "grid") == 0)
            o->topology = SIM_TOPO_GRID;
        else if (strcmp(v, "random") == 0)
            o->topology = SIM_TOPO_RANDOM;
        else if (strcmp(v, "contacts") == 0)
            o->topology = SIM_TOPO_CONTACTS;
        else
            return -1;
    } else if (strcmp(f, "--policy") == 0) {
        if (strcmp(v, "ferry") == 0)
            o->policy = FE_POLICY_FERRY;
        else if (strcmp(v, "naive") == 0)
            o->policy = FE_POLICY_NAIVE;
        else
            return -1;
    } else if (strcmp(f, "--partition") == 0) {
        if (strcmp(v, "none") == 0)
            o->partition = SIM_PART_NONE;
        else if (strcmp(v, "halves") == 0)
            o->partition = SIM_PART_HALVES;
        else
            return -1;
    } else if (strcmp(f, "--workload") == 0) {
        if (strcmp(v, "random") == 0)
            o->workload = SIM_WL_RANDOM;
        else if (strcmp(v, "first-to-last") == 0)
            o->workload = SIM_WL_FIRST_TO_LAST;
        else
            return -1;
    } else if (strcmp(f, "--nodes") == 0) {
        if (parse_u32(v, &o->nodes, SIM_NODES_MAX) < 0 || o->nodes < 1)
            return -1;
    } else if (strcmp(f, "--messages") == 0) {
        if (parse_u32(v, &o->messages, SIM_MESSAGES_MAX) < 0)
            return -1;
    } else if (strcmp(f, "--crashes") == 0) {
        if (parse_u32(v, &o->crashes, SIM_NODES_MAX) < 0)
            return -1;
    } else if (strcmp(f, "--mtu") == 0) {
        if (parse_u32(v, &o->mtu, FE_FRAME_MAX) < 0 || o->mtu < FE_MTU_MIN)
            return -1;
    } else if (strcmp(f, "--seed") == 0) {
        if (parse_u64(v, &o->seed) < 0)
            return -1;
    } else if (strcmp(f, "--dedupe-capacity") == 0) {
        /* The engine wants a power of two of at least 16. */
        if (parse_u32(v, &o->dedupe_capacity, 1u << 30) < 0 ||
            (o->dedupe_capacity != 0 &&
             (o->dedupe_capacity < 16 || (o->dedupe_capacity & (o->dedupe_capacity - 1)))))
            return -1;
    } else if (strcmp(f, "--hops") == 0) {
        if (parse_u32(v, &o->hops, 255) < 0 || o->hops < 1)
            return -1;
    } else if (strcmp(f, "--max-events") == 0) {
        if (parse_u64(v, &o->max_events) < 0)
            return -1;
    } else if (strcmp(f, "--adversary") == 0) {
        if (adversary_parse(o, v) < 0)
            return -1;
    } else if (strcmp(f, "--flood-messages") == 0) {
        if (parse_u32(v, &o->flood_messages, SIM_FLOOD_MAX) < 0)
            return -1;
    } else {
        if (parse_double(v, &d) < 0)
            return -1;
        if (strcmp(f, "--radius") == 0 && d > 0)
            o->radius = d;
        else if (strcmp(f, "--contact-rate") == 0 && d >= 0)
            o->contact_rate = d;
        else if (strcmp(f, "--contact-duration") == 0 && d > 0)
            o->contact_duration_s = d;
        else if (strcmp(f, "--loss") == 0 && prob(d))
            o->loss = d;
        else if (strcmp(f, "--dup") == 0 && prob(d))
            o->dup = d;
        else if (strcmp(f, "--churn") == 0 && prob(d))
            o->churn = d;
        else if (strcmp(f, "--latency") == 0 && d >= 0)
            o->latency_ms = d;
        else if (strcmp(f, "--bitrate") == 0 && d >= 0)
            o->bitrate_bps = d;
        else if (strcmp(f, "--heal") == 0 && d >= 0)
            o->heal_s = d;
        else if (strcmp(f, "--send-start") == 0 && d >= 0)
            o->send_start_s = d;
        else if (strcmp(f, "--send-end") == 0 && d >= 0)
            o->send_end_s = d;
        else if (strcmp(f, "--late-join") == 0 && d >= 0)
            o->late_join_s = d;
        else if (strcmp(f, "--duration") == 0 && d > 0)
            o->duration_s = d;
        else if (strcmp(f, "--lifetime") == 0 && d > 0)
            o->lifetime_s = d;
        else if (strcmp(f, "--naive-round") == 0 && d > 0)
            o->naive_round_s = d;
        else
            return -1;
    }
    return 2;
#undef NEEDV
}

/* Defaults that depend on other settings, then cross-checks. */
static int finish(sim_opts *o)
{
    if (o->lifetime_s < 0)
        o->lifetime_s = o->duration_s;
    if (o->send_end_s < 0)
        o->send_end_s = o->duration_s / 2;
    if (o->send_start_s > o->send_end_s) {
        fprintf(stderr, "ferry-sim: --send-start is after --send-end\n");
        return -1;
    }
    if (sim_ms(o->lifetime_s) > FE_LIFETIME_MAX_MS) {
        fprintf(stderr, "ferry-sim: --lifetime is over the protocol's maximum\n");
        return -1;
    }
    if (o->duration_s > 1e9) {
        fprintf(stderr, "ferry-sim: --duration is too long\n");
        return -1;
    }
    uint32_t adversaries = 0;
    for (int k = 1; k < SIM_ADV_KINDS; k++)
        adversaries += o->adv_count[k];
    if (adversaries == 0 && strcmp(o->scenario, "adversary") == 0)
        for (int k = 1; k < SIM_ADV_KINDS; k++)
            o->adv_count[k] = 1;
    if (adversaries > SIM_ADV_MAX) {
        fprintf(stderr, "ferry-sim: at most %u adversaries\n", SIM_ADV_MAX);
        return -1;
    }
    if (o->workload == SIM_WL_FIRST_TO_LAST && o->nodes < 2) {
        fprintf(stderr, "ferry-sim: first-to-last needs two nodes\n");
        return -1;
    }
    return 0;
}

static void print_reproduce(int argc, char **argv, uint64_t seed)
{
    fprintf(stderr, "reproduce (ferry-sim %s):", FE_VERSION);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            i++;
            continue;
        }
        fprintf(stderr, " %s", argv[i]);
    }
    fprintf(stderr, " --seed %llu\n", (unsigned long long)seed);
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static sim s; /* large; static keeps it off the stack */
    sim_opts *o = &s.o;
    defaults(o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--scenario") == 0) {
            if (i + 1 >= argc || scenario(o, argv[i + 1]) < 0) {
                fprintf(stderr, "ferry-sim: unknown scenario (try --help)\n");
                return 2;
            }
            i++;
        }
    }
    for (int i = 1; i < argc;) {
        int used = flag(o, argv[i], i + 1 < argc ? argv[i + 1] : NULL);
        if (used < 0) {
            fprintf(stderr, "ferry-sim: bad flag or value: %s%s%s (try --help)\n", argv[i],
                    i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
            return 2;
        }
        i += used;
    }
    if (finish(o) < 0)
        return 2;

    /* Before sodium_init, so that every key and nonce comes from the seed. */
    if (sim_rng_install_sodium(o->seed) < 0 || sodium_init() < 0) {
        fprintf(stderr, "ferry-sim: libsodium failed to start\n");
        return 2;
    }
    double t0 = wall_s();
    if (sim_setup(&s) < 0) {
        fprintf(stderr, "ferry-sim: set-up failed\n");
        sim_free(&s);
        return 2;
    }
    if (sim_run(&s) < 0) {
        fprintf(stderr, "ferry-sim: the run failed\n");
        sim_free(&s);
        return 2;
    }
    double t1 = wall_s();
    output_report(&s, stdout);
    fflush(stdout);
    if (o->verbose)
        output_undelivered(&s, stderr);
    if (o->bench) {
        double w = t1 - t0;
        fprintf(stderr,
                "bench: %u nodes, %.0f virtual s, %llu events in %.3f s wall, %.0f events/s\n", s.n,
                (double)s.stop_ms / 1000.0, (unsigned long long)s.events, w,
                w > 0 ? (double)s.events / w : 0.0);
    }
    uint64_t violations = s.violations;
    fprintf(stderr, "invariant violations: %llu\n", (unsigned long long)violations);
    if (violations > 0)
        print_reproduce(argc, argv, o->seed);
    sim_free(&s);
    return violations > 0 ? 1 : 0;
}
