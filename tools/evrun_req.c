/*
 * evrun_req.c: the requests to an execution from any process: send (an
 * event), pause, unpause and terminate. Each is posted to the
 * execution's inbox, durable when the command returns; the runner that
 * owns the execution, or the next one, records it. A request to an
 * execution that continued as new goes along its chain to the last one.
 * Pause, unpause and terminate record who asked (--by, by default the
 * user) and why (--reason).
 */
#include "evrun.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What pause, unpause and terminate were told: borrowed from argv. */
typedef struct req_opts {
    const char *by;     /* NULL: the user's name */
    const char *reason; /* NULL: none */
} req_opts;

/* Whether word w is one of a control request's options that takes a
 * value as the next word. */
static int value_option(const char *w)
{
    return strcmp(w, "--by") == 0 || strcmp(w, "--reason") == 0;
}

/* Whether word w is an option of this request's own (--help, and for a
 * control request --by and --reason), which may follow EXEC. */
static int own_option(const char *w, int control)
{
    if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0)
        return 1;
    return control &&
           (value_option(w) || strncmp(w, "--by=", 5) == 0 ||
            strncmp(w, "--reason=", 9) == 0);
}

/*
 * Parses a request's command line. Options are taken up to EXEC, and
 * after it only while they are the command's own: the first other word
 * after EXEC (a type, a payload, a reason) ends them, so that what
 * follows may begin with '-'. `ro` is NULL for send, which takes no
 * --by or --reason. Returns 0, an exit status, or -1 after printing the
 * help.
 */
static int request_args(int argc, char **argv, int min, int max,
                        const char *names, req_opts *ro)
{
    static const struct option lo[] = {
        {"by", required_argument, NULL, OPT_BY},
        {"reason", required_argument, NULL, OPT_REASON},
        OPT_HELP,
        OPT_END};
    static const struct option lo_send[] = {OPT_HELP, OPT_END};
    int limit = argc, words = 0, c;

    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *w = argv[i];

        if (w[0] == '-' && w[1] && (words < 2 || own_option(w, ro != NULL))) {
            i += ro && value_option(w); /* its value is no word */
            continue;
        }
        if (words++ >= 2) {
            limit = i;
            break;
        }
    }
    while ((c = next_opt(argv[0], limit, argv, "", ro ? lo : lo_send)) != -1) {
        if (c == 'h') {
            print_help(argv[0]);
            return -1;
        }
        if (c == OPT_BY && ro)
            ro->by = optarg;
        else if (c == OPT_REASON && ro)
            ro->reason = optarg;
        else
            return -c;
    }
    return positionals(argv[0], argc, argv, min, max, names);
}

/* Who asks, when --by does not say: the name of the effective user
 * (getpwuid), else $USER, else "uid:N". Written to buf. */
static const char *default_by(char *buf, size_t cap)
{
    const struct passwd *pw = getpwuid(geteuid());
    const char *env = getenv("USER");

    if (pw && pw->pw_name && pw->pw_name[0])
        snprintf(buf, cap, "%s", pw->pw_name);
    else if (env && env[0])
        snprintf(buf, cap, "%s", env);
    else
        snprintf(buf, cap, "uid:%lu", (unsigned long)geteuid());
    return buf;
}

/* Posts request `kind` ("event", "pause", ...) with the event type,
 * payload and `by` to the execution named by argv[optind + 1]. */
static int post(char **argv, const char *kind, evs_span type, evs_span payload,
                evs_span by)
{
    const char *store = argv[optind], *id = argv[optind + 1];
    evs_store *s = NULL;
    int ex, rc;

    if ((ex = open_store(store, &s)) != 0)
        return ex;
    rc = evs_orch_post_by(s, evs_span_cstr(id), evs_span_cstr(kind), type,
                          payload, by);
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

    if ((ex = request_args(argc, argv, 3, 4, "STORE EXEC TYPE", NULL)) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    if (argc - optind < 4 ||
        (ex = json_arg("send", "the payload", argv[optind + 3], &buf,
                       &payload)) == 0)
        ex = post(argv, "event", evs_span_cstr(argv[optind + 2]), payload,
                  (evs_span){0});
    free(buf);
    return ex;
}

/* pause, unpause and terminate: who asks (--by) and an optional reason
 * (--reason, or for pause and terminate the REASON word), posted as a
 * JSON string. */
static int control_request(int argc, char **argv, const char *kind, int max)
{
    req_opts ro = {NULL, NULL};
    evs_span reason = {0};
    char *quoted = NULL, user[256];
    const char *text;
    size_t n;
    int ex;

    if ((ex = request_args(argc, argv, 2, max, "STORE EXEC", &ro)) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    if (argc - optind > 2 && ro.reason)
        return usage_error(argv[0], "a reason is given twice (REASON and "
                                    "--reason)");
    text = argc - optind > 2 ? argv[optind + 2] : ro.reason;
    if (!ro.by)
        ro.by = default_by(user, sizeof(user));
    if (strlen(ro.by) > EVS_BY_MAX)
        return usage_error(argv[0], "--by is longer than %d bytes",
                           EVS_BY_MAX);
    if (text) {
        n = evs_json_quote(evs_span_cstr(text), NULL, 0);
        if (n == (size_t)-1 || !(quoted = malloc(n)))
            return usage_error(argv[0], "the reason is not UTF-8");
        evs_json_quote(evs_span_cstr(text), quoted, n);
        reason = (evs_span){quoted, n};
    }
    if (evs_json_quote(evs_span_cstr(ro.by), NULL, 0) == (size_t)-1)
        ex = usage_error(argv[0], "--by is not UTF-8");
    else
        ex = post(argv, kind, (evs_span){0}, reason, evs_span_cstr(ro.by));
    free(quoted);
    return ex;
}

int cmd_pause(int argc, char **argv)
{
    return control_request(argc, argv, "pause", 3);
}

int cmd_terminate(int argc, char **argv)
{
    return control_request(argc, argv, "terminate", 3);
}

int cmd_unpause(int argc, char **argv)
{
    return control_request(argc, argv, "unpause", 2);
}
