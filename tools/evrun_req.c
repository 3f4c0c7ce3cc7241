/*
 * evrun_req.c: the requests to an execution from any process: send (an
 * event), pause, unpause and terminate. Each is posted to the
 * execution's inbox, durable when the command returns; the runner that
 * owns the execution, or the next one, records it. A request to an
 * execution that continued as new goes along its chain to the last one.
 */
#include "evrun.h"

#include <stdlib.h>
#include <string.h>

/*
 * Parses a request's command line: options are taken up to EXEC only,
 * so that what follows (a payload, a reason) may begin with '-'. Returns
 * 0, an exit status, or -1 after printing the help.
 */
static int request_args(int argc, char **argv, int min, int max,
                        const char *names)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    int limit = argc, words = 0, c;

    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if ((argv[i][0] != '-' || !argv[i][1]) && ++words == 2) {
            limit = i + 1;
            break;
        }
    }
    while ((c = next_opt(argv[0], limit, argv, "", lo)) != -1) {
        if (c != 'h')
            return -c;
        print_help(argv[0]);
        return -1;
    }
    return positionals(argv[0], argc, argv, min, max, names);
}

/* Posts request `kind` ("event", "pause", ...) with the event type and
 * payload to the execution named by argv[optind + 1]. */
static int post(char **argv, const char *kind, evs_span type, evs_span payload)
{
    const char *store = argv[optind], *id = argv[optind + 1];
    evs_store *s = NULL;
    int ex, rc;

    if ((ex = open_store(store, &s)) != 0)
        return ex;
    rc =
        evs_orch_post(s, evs_span_cstr(id), evs_span_cstr(kind), type, payload);
    if (rc == EVS_EFINISHED) {
        note("execution %s has ended; request refused", id);
        ex = EXIT_FAILED;
    } else if (rc != 0) {
        ex = fail_on_exec(s, store, id, rc, argv[0]);
    }
    evs_store_close(s);
    return ex;
}

int cmd_send(int argc, char **argv)
{
    evs_span payload = {0};
    char *buf = NULL;
    int ex;

    if ((ex = request_args(argc, argv, 3, 4, "STORE EXEC TYPE")) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    if (argc - optind < 4 ||
        (ex = json_arg("send", "the payload", argv[optind + 3], &buf,
                       &payload)) == 0)
        ex = post(argv, "event", evs_span_cstr(argv[optind + 2]), payload);
    free(buf);
    return ex;
}

/* pause and terminate, with an optional reason (a JSON string). */
static int request_with_reason(int argc, char **argv, const char *kind)
{
    evs_span reason;
    char *quoted = NULL;
    size_t n;
    int ex;

    if ((ex = request_args(argc, argv, 2, 3, "STORE EXEC")) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    if (argc - optind < 3)
        return post(argv, kind, (evs_span){0}, (evs_span){0});
    reason = evs_span_cstr(argv[optind + 2]);
    n = evs_json_quote(reason, NULL, 0);
    if (n == (size_t)-1 || !(quoted = malloc(n)))
        return usage_error(argv[0], "the reason is not UTF-8");
    evs_json_quote(reason, quoted, n);
    ex = post(argv, kind, (evs_span){0}, (evs_span){quoted, n});
    free(quoted);
    return ex;
}

int cmd_pause(int argc, char **argv)
{
    return request_with_reason(argc, argv, "pause");
}

int cmd_terminate(int argc, char **argv)
{
    return request_with_reason(argc, argv, "terminate");
}

int cmd_unpause(int argc, char **argv)
{
    int ex;

    if ((ex = request_args(argc, argv, 2, 2, "STORE EXEC")) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    return post(argv, "unpause", (evs_span){0}, (evs_span){0});
}
