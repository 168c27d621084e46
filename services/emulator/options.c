/* options.c -- the command line; see options.h. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/log.h"

static const char help[] =
    "Usage: convdiag-emulator [OPTIONS]\n\n"
    "A local stand-in for the Application Insights ingestion service: POST\n"
    "/v2/track and /v2.1/track take telemetry (gzip or identity, a JSON array or\n"
    "application/x-json-stream), judge every item as the service does and answer\n"
    "200, 206 with per-item errors, or 400.  Accepted traces are kept in memory and\n"
    "shown at http://ADDR/ as the portal's Traces table shows them.\n\n"
    "Options:\n"
    "  --listen ADDR:PORT        where to listen (default " EMU_DEFAULT_LISTEN "; port 0:\n"
    "                            any free port, logged at start)\n"
    "  --control-listen ADDR:PORT\n"
    "                            a second port for /control, /api/ and the page\n"
    "                            only; it stays open while the first is down\n"
    "  --redirect-listen ADDR:PORT\n"
    "                            a second ingestion port, never redirected: where\n"
    "                            the redirect fault sends requests\n"
    "  --ikey KEY                an instrumentation key to accept (repeatable);\n"
    "                            without any, every key of GUID form is accepted\n"
    "  --bearer TOKEN            require \"Authorization: Bearer TOKEN\" on track\n"
    "                            requests, as Microsoft Entra authentication does;\n"
    "                            401 otherwise (also at run time: {\"bearer\": ...},\n"
    "                            \"\" for none; {\"reset\": true} leaves it)\n"
    "  --max-items N             traces kept in memory (default 2000000); past\n"
    "                            that, items are refused with 503\n"
    "  --max-body BYTES          a request body as sent (default 1048576); larger: 413\n"
    "  --max-inflated BYTES      a body once gzip is undone (default 67108864);\n"
    "                            larger: 413\n"
    "  --seed N                  seed of the fault draws (default 1)\n"
    "  --log-level LEVEL         error, warn, info or debug (default info)\n"
    "  -h, --help                this help\n"
    "  --version                 the version\n\n"
    "Faults (also switched at run time: POST /control with the same names,\n"
    "underscores for dashes, e.g. {\"request_fault_code\": 503}; GET /control reads\n"
    "them; {\"reset\": true} turns them all off):\n"
    "  --request-fault-code CODE\n"
    "                            answer whole requests with 400, 402, 408, 429,\n"
    "                            439, 500, 502, 503 or 504 (0: off, the default)\n"
    "  --request-fault-share P   the share of requests hit, 0 to 1 (default 1)\n"
    "  --item-fault-code CODE    refuse single items with that code, in a 206\n"
    "  --item-fault-share P      the share of items hit, 0 to 1 (default 1)\n"
    "  --retry-after SECONDS     Retry-After sent with 408, 429, 439 and 5xx\n"
    "                            answers (default 1; 0: none)\n"
    "  --retry-after-format F    seconds or date (an HTTP-date); default seconds\n"
    "  --delay-ms N              hold track answers back N ms (default 0)\n"
    "  --delay-share P           the share of track answers delayed (default 1)\n"
    "  --down-for SECONDS        start with the port closed, open it after SECONDS;\n"
    "                            at run time {\"down\": true} closes it until\n"
    "                            {\"down\": false} comes on the control port\n"
    "  --redirect CODE           answer track requests on the first port 307 or 308\n"
    "                            (0: off), Location on the --redirect-listen port\n"
    "  --redirect-to T           alternate (default) or self: a redirect loop\n"
    "  --redirect-max-age S      Cache-Control: max-age=S with it (none: no header)\n"
    "  --auth-fault F            401, 403 or unsupported (400 \"Authentication not\n"
    "                            supported\") for every track request; off\n"
    "  --body-fault F            cut (a 200 whose answer stops short) or html (a\n"
    "                            proxy's page); the items are not kept; off\n"
    "  --body-fault-share P      the share of requests hit (default 1)\n"
    "  --throttle-rate N         the service's throttle: past N items/s over the\n"
    "                            window, 429 with the Retry-After that makes room\n"
    "                            (0: off, the default; the service's is 32000)\n"
    "  --throttle-window S       the window, seconds (default 60, at most 600)\n\n"
    "Exit codes: 0 after SIGINT or SIGTERM, 1 when it cannot listen, 2 for a bad\n"
    "command line.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "convdiag-emulator: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'convdiag-emulator --help'.\n");
    return EMU_EXIT_USAGE;
}

static bool parse_size(const char *arg, size_t min, size_t max, size_t *out)
{
    char *end;
    if (!arg[0] || arg[0] == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

int emu_options_parse(int argc, char **argv, emu_t *emu)
{
    enum {
        OPT_LISTEN = 1, OPT_CONTROL, OPT_REDIRECT_LISTEN, OPT_IKEY, OPT_MAX_ITEMS, OPT_MAX_BODY, OPT_MAX_INFLATED,
        OPT_SEED, OPT_LOG_LEVEL, OPT_VERSION, OPT_FAULT,
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"control-listen", required_argument, NULL, OPT_CONTROL},
        {"redirect-listen", required_argument, NULL, OPT_REDIRECT_LISTEN},
        {"ikey", required_argument, NULL, OPT_IKEY},
        {"max-items", required_argument, NULL, OPT_MAX_ITEMS},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"max-inflated", required_argument, NULL, OPT_MAX_INFLATED},
        {"seed", required_argument, NULL, OPT_SEED},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        /* The fault switches: their names, dashes for underscores. */
        {"request-fault-code", required_argument, NULL, OPT_FAULT},
        {"request-fault-share", required_argument, NULL, OPT_FAULT},
        {"item-fault-code", required_argument, NULL, OPT_FAULT},
        {"item-fault-share", required_argument, NULL, OPT_FAULT},
        {"retry-after", required_argument, NULL, OPT_FAULT},
        {"retry-after-format", required_argument, NULL, OPT_FAULT},
        {"delay-ms", required_argument, NULL, OPT_FAULT},
        {"delay-share", required_argument, NULL, OPT_FAULT},
        {"down-for", required_argument, NULL, OPT_FAULT},
        {"bearer", required_argument, NULL, OPT_FAULT},
        {"redirect", required_argument, NULL, OPT_FAULT},
        {"redirect-to", required_argument, NULL, OPT_FAULT},
        {"redirect-max-age", required_argument, NULL, OPT_FAULT},
        {"auth-fault", required_argument, NULL, OPT_FAULT},
        {"body-fault", required_argument, NULL, OPT_FAULT},
        {"body-fault-share", required_argument, NULL, OPT_FAULT},
        {"throttle-rate", required_argument, NULL, OPT_FAULT},
        {"throttle-window", required_argument, NULL, OPT_FAULT},
        {0},
    };
    /* Faults are set once the seed is known, in command-line order. */
    struct fault_arg {
        const char *name, *value;
    } faults[CD_ARRAY_LEN(opts)];
    size_t nfaults = 0, seed = 1;
    const char *listen = EMU_DEFAULT_LISTEN;
    cd_log_level_t level;
    cd_err_t err;
    int opt, index;

    emu->conf.max_items = EMU_DEFAULT_MAX_ITEMS;
    emu->conf.max_body = EMU_DEFAULT_MAX_BODY;
    emu->conf.max_inflated = EMU_DEFAULT_MAX_INFLATED;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, &index)) != -1) {
        switch (opt) {
        case 'h':
            fputs(help, stdout);
            return EMU_EXIT_OK;
        case OPT_VERSION:
            printf("convdiag-emulator %s\n", CD_VERSION);
            return EMU_EXIT_OK;
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_CONTROL:
            if (cd_addr_parse(optarg, &emu->conf.control_listen, &err) != CD_OK)
                return usage_error("--control-listen: %s", err.msg);
            break;
        case OPT_REDIRECT_LISTEN:
            if (cd_addr_parse(optarg, &emu->conf.redirect_listen, &err) != CD_OK)
                return usage_error("--redirect-listen: %s", err.msg);
            break;
        case OPT_IKEY:
            if (emu_ikeys_add(&emu->conf.ikeys, optarg, &err) != CD_OK)
                return usage_error("--ikey: %s", err.msg);
            break;
        case OPT_MAX_ITEMS:
            if (!parse_size(optarg, 1, EMU_MAX_ITEMS_LIMIT, &emu->conf.max_items))
                return usage_error("--max-items: '%s' is not a whole number from 1 to %d",
                                   optarg, EMU_MAX_ITEMS_LIMIT);
            break;
        case OPT_MAX_BODY:
        case OPT_MAX_INFLATED:
            /* At most 1 GiB: zlib counts input in 32 bits. */
            if (!parse_size(optarg, 1024, 1u << 30,
                            opt == OPT_MAX_BODY ? &emu->conf.max_body : &emu->conf.max_inflated))
                return usage_error("--%s: '%s' is not a whole number of bytes from 1024 to "
                                   "1073741824",
                                   opts[index].name, optarg);
            break;
        case OPT_SEED:
            if (!parse_size(optarg, 0, SIZE_MAX, &seed))
                return usage_error("--seed: '%s' is not a whole number", optarg);
            break;
        case OPT_LOG_LEVEL:
            if (cd_log_level_parse(optarg, &level) != 0)
                return usage_error("--log-level: '%s' is not error, warn, info or debug", optarg);
            cd_log_set_level(level);
            break;
        case OPT_FAULT:
            /* Repeated often enough, switches would overrun the list. */
            if (nfaults == CD_ARRAY_LEN(faults))
                return usage_error("too many fault options");
            faults[nfaults++] = (struct fault_arg){opts[index].name, optarg};
            break;
        default:
            return usage_error("invalid option");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (cd_addr_parse(listen, &emu->conf.listen, &err) != CD_OK)
        return usage_error("--listen: %s", err.msg);

    emu_faults_init(&emu->faults, (uint64_t)seed);
    for (size_t i = 0; i < nfaults; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s", faults[i].name);
        for (char *c = name; *c; c++)
            if (*c == '-')
                *c = '_';
        if (emu_faults_set(&emu->faults, name, faults[i].value, cd_mono_us(), &err) != CD_OK)
            return usage_error("--%s: %s", faults[i].name, err.msg);
    }
    return -1;
}
