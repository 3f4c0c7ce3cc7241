/*
 * common.c: what evdump, evreplay and evrun share (common.h): messages,
 * the report of a store or execution that cannot be had, opening a
 * store, reading a file argument, command dispatch and help, option
 * parsing, and the result output.
 *
 * One place for these is what makes the three tools say the same thing
 * in the same situation.
 */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *tool_name = "evstore";
int tool_allow_unsafe;
evs_log_sink tool_log = {EVS_LOG_TEXT, EVS_LOG_WARN, NULL};

static const tool_def *g_def;
static FILE *g_out;
static const char *g_out_name = "stdout";
static int g_out_err;

/* ------------------------------------------------------------------ */
/* Messages                                                           */
/* ------------------------------------------------------------------ */

void vline(const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One line, whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fflush(g_out ? g_out : stdout);
    if (prefix)
        fprintf(stderr, "%s%s\n", prefix, msg);
    else
        fprintf(stderr, "%s: %s\n", tool_name, msg);
}

void note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline(NULL, fmt, ap);
    va_end(ap);
}

int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline(NULL, fmt, ap);
    va_end(ap);
    return EXIT_ERROR;
}

int fail_rc(int rc, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fail("%s: %s (%s)", msg, evs_strerror(rc), evs_err_name(rc));
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cmd)
        fail("%s: %s (run '%s %s --help')", cmd, msg, tool_name, cmd);
    else
        fail("%s (run '%s --help')", msg, tool_name);
    return EXIT_USAGE;
}

int fail_evs(int rc, const evs_error_info *info, const char *what)
{
    if (info && info->code != 0 && info->msg[0]) {
        if (info->execution_id[0] && strstr(info->msg, info->execution_id))
            return fail("%s (%s)", info->msg, evs_err_name(rc));
        return fail("%s: %s (%s)", what, info->msg, evs_err_name(rc));
    }
    return fail("%s: %s (%s)", what, evs_strerror(rc), evs_err_name(rc));
}

int fail_exec(int rc, const evs_error_info *info, const char *store,
              const char *id)
{
    if (rc == EVS_EBADID)
        return fail("'%s' is not a valid execution id", id);
    if (rc == -ENOENT)
        return fail("no execution '%s' in store %s", id, store);
    return fail_evs(rc, info, id);
}

int probe_exec(evs_store *st, const char *id, evs_error_info *info)
{
    evs_log *l = NULL;
    int rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, info);

    evs_log_close(l);
    return rc;
}

int fail_on_exec(evs_store *st, const char *store, const char *id, int rc,
                 const char *what)
{
    evs_error_info info;
    int orc = probe_exec(st, id, &info);

    if (orc != 0 && (rc == 0 || orc == rc))
        return fail_exec(orc, &info, store, id);
    if (rc == 0)
        return fail_exec(-ENOENT, NULL, store, id);
    return fail("%s: %s: %s (%s)", id, what, evs_strerror(rc),
                evs_err_name(rc));
}

/* ------------------------------------------------------------------ */
/* Store and files                                                    */
/* ------------------------------------------------------------------ */

/* Whether a store location is a PostgreSQL URI (store.h). */
static int is_pg_uri(const char *path)
{
    return strncmp(path, "postgresql://", 13) == 0 ||
           strncmp(path, "postgres://", 11) == 0;
}

int open_store_opts(const char *path, evs_store_opts *o, const char *missing,
                    evs_store **out)
{
    evs_store_opts dflt;
    int rc;

    if (!o) {
        evs_store_opts_init(&dflt);
        dflt.create = 0;
        o = &dflt;
    }
    o->allow_unsafe_perms = tool_allow_unsafe;
    if (!o->log_fn) {
        o->log_fn = evs_log_stderr;
        o->log_ctx = &tool_log;
    }
    rc = evs_store_open(path, o, out);
    if (rc == 0)
        return 0;
    if (rc == -ENOENT && is_pg_uri(path))
        return fail("no store at %s (no evstore tables in that database's "
                    "schema%s)",
                    path, missing ? missing : "");
    if (rc == -ENOENT)
        return fail("no store at %s (no such %s%s)", path,
                    strncmp(path, "sqlite:", 7) == 0 ? "database file"
                                                     : "directory",
                    missing ? missing : "");
    if (rc == -ECONNREFUSED && is_pg_uri(path))
        return fail("cannot open store %s: cannot connect to its PostgreSQL "
                    "server (ECONNREFUSED)",
                    path);
    if (rc == EVS_ENOBACKEND)
        return fail("cannot open store %s: this evstore is built without "
                    "the backend it names (EVS_ENOBACKEND)",
                    path);
    if (rc == EVS_EUNSAFE)
        return fail("refusing store %s: group or others may write to it "
                    "(--allow-unsafe-perms opens it anyway)",
                    path);
    return fail("cannot open store %s: %s (%s)", path, evs_strerror(rc),
                evs_err_name(rc));
}

int open_store(const char *path, evs_store **out)
{
    return open_store_opts(path, NULL, NULL, out);
}

int is_bundle_path(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int open_bundle(const char *path, evs_bundle **out)
{
    evs_error_info info;
    int rc;

    evs_error_info_clear(&info);
    rc = evs_bundle_open(path, NULL, out, &info);
    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        return fail("no bundle at %s (no such file)", path);
    return fail("%s: %s (%s)", path, info.msg[0] ? info.msg : evs_strerror(rc),
                evs_err_name(rc));
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    int err = 0;

    if (!f)
        return NULL;
    do {
        if (cap - n < 2) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) {
                err = ENOMEM;
                break;
            }
            buf = nb;
            cap = nc;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    if (!err && ferror(f))
        err = errno ? errno : EIO;
    if (f != stdin)
        fclose(f);
    if (err) {
        free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ------------------------------------------------------------------ */
/* Commands and options                                               */
/* ------------------------------------------------------------------ */

void print_help(const char *cmd)
{
    const tool_def *t = g_def;

    for (size_t i = 0; cmd && i < t->ncommands; i++) {
        if (strcmp(cmd, t->commands[i].name) != 0 || !t->commands[i].help)
            continue;
        out_printf("Usage: %s\n%s\n%s", t->commands[i].help, t->common,
                   t->exit);
        return;
    }
    out_printf("%s", t->head);
    for (size_t i = 0; i < t->ncommands; i++)
        out_printf("  %-9s %s\n", t->commands[i].name, t->commands[i].summary);
    out_printf("\n%s\n", t->common);
    for (size_t i = 0; i < t->ncommands; i++)
        if (t->commands[i].help)
            out_printf("%s\n", t->commands[i].help);
    if (t->more)
        out_printf("%s\n", t->more);
    out_printf("%s", t->exit);
}

void print_version(void)
{
    out_printf("%s (evstore) %s\n", tool_name, evs_version());
}

static const tool_command *find_command(const char *name)
{
    for (size_t i = 0; i < g_def->ncommands; i++)
        if (strcmp(name, g_def->commands[i].name) == 0)
            return &g_def->commands[i];
    return NULL;
}

int tool_cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return usage_error("help", "too many arguments");
    if (argc == 2 && !find_command(argv[1]))
        return usage_error("help", "unknown command '%s'", argv[1]);
    print_help(argc == 2 ? argv[1] : NULL);
    return EXIT_OKAY;
}

int tool_log_option(const char *opt, const char *val)
{
    static const char *const styles[] = {"json", "logfmt", "text"};
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    static char prefix[64];
    int is_fmt = strcmp(opt, "--log-format") == 0;
    const char *const *names = is_fmt ? styles : levels;
    size_t n = is_fmt ? 3 : 4;

    snprintf(prefix, sizeof(prefix), "%s: ", tool_name);
    tool_log.prefix = prefix;
    for (size_t i = 0; val && i < n; i++) {
        if (strcmp(val, names[i]) != 0)
            continue;
        if (is_fmt)
            tool_log.style = (evs_log_style)i;
        else
            tool_log.max_level = (evs_log_level)i;
        return 0;
    }
    return usage_error(NULL, "%s takes %s, got '%s'", opt,
                       is_fmt ? "text, logfmt or json"
                              : "error, warn, info or debug",
                       val ? val : "nothing");
}

/* If argv[*i] is --log-format or --log-level (with "=VALUE" or the value
 * in the next argument), takes it; returns 1 if it did, 0 if it is not
 * one, or -EXIT_USAGE. */
static int take_log_option(int argc, char **argv, int *i)
{
    static const char *const opts[] = {"--log-format", "--log-level"};

    for (size_t k = 0; k < 2; k++) {
        size_t len = strlen(opts[k]);
        const char *val;
        int rc;

        if (strncmp(argv[*i], opts[k], len) != 0)
            continue;
        if (argv[*i][len] == '=')
            val = argv[*i] + len + 1;
        else if (argv[*i][len] == '\0')
            val = *i + 1 < argc ? argv[++*i] : NULL;
        else
            continue;
        rc = tool_log_option(opts[k], val);
        return rc ? -rc : 1;
    }
    return 0;
}

int tool_main(const tool_def *t, int argc, char **argv)
{
    const tool_command *c;
    const char *name;
    int n = 1;

    g_def = t;
    tool_name = t->name;
    out_to(stdout, "stdout");
    opterr = 0;
    (void)tool_log_option("--log-format", "text"); /* sets the prefix */
    /* The one option every command takes is taken out here, before the
     * command's own parsing; "--" ends options, so not after it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[n++] = argv[i++];
            break;
        }
        int lo;

        if (strcmp(argv[i], "--allow-unsafe-perms") == 0)
            tool_allow_unsafe = 1;
        else if ((lo = take_log_option(argc, argv, &i)) < 0)
            return -lo;
        else if (lo == 0)
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    argc = n;
    if (argc < 2)
        return usage_error(NULL, "no command given");
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_help(NULL);
        return out_finish(EXIT_OKAY);
    }
    if (strcmp(name, "--version") == 0) {
        print_version();
        return out_finish(EXIT_OKAY);
    }
    if ((c = find_command(name)) != NULL) {
        optind = 0; /* full reinitialisation of GNU getopt */
        return out_finish(c->run(argc - 1, argv + 1));
    }
    if (name[0] == '-')
        return usage_error(NULL, "expected a command before '%s'", name);
    return usage_error(NULL, "unknown command '%s'", name);
}

int next_opt(const char *cmd, int argc, char **argv, const char *shortopts,
             const struct option *longopts)
{
    char sopts[64];
    int plus = shortopts[0] == '+', c;

    /* A leading ':' makes a missing argument ':' rather than '?'. */
    snprintf(sopts, sizeof(sopts), "%s:%sh", plus ? "+" : "", shortopts + plus);
    c = getopt_long(argc, argv, sopts, longopts, NULL);
    if (c == '?' || c == ':') {
        const char *arg = argv[optind - 1];
        char shown[64];

        /* For a long option the word is shown without its "=value". */
        if (arg[0] == '-' && arg[1] == '-')
            snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(arg, "="), arg);
        else
            snprintf(shown, sizeof(shown), "-%c", optopt ? optopt : '?');
        if (c == '?')
            return -usage_error(cmd, "unknown option '%s'", shown);
        return -usage_error(cmd, "option '%s' needs an argument", shown);
    }
    return c;
}

int positionals(const char *cmd, int argc, char **argv, int min, int max,
                const char *names)
{
    int have = argc - optind;

    if (have < min) {
        char missing[128] = "";
        const char *p = names;
        size_t n = 0;

        /* The names from the first missing one up to the last needed,
         * joined with "and". */
        for (int i = 0; i < min && *p; i++) {
            size_t w = strcspn(p, " ");
            if (i >= have)
                n += (size_t)snprintf(missing + n, sizeof(missing) - n,
                                      "%s%.*s", n ? " and " : "", (int)w, p);
            if (n >= sizeof(missing))
                break;
            p += w + (p[w] == ' ');
        }
        return usage_error(cmd, "missing %s", missing);
    }
    if (have > max)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind + max]);
    return 0;
}

int parse_num(const char *cmd, const char *opt, const char *arg, uint64_t min,
              uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = arg;

    if (!*p)
        return usage_error(cmd, "%s needs a number, got ''", opt);
    for (; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (*p < '0' || *p > '9')
            return usage_error(cmd,
                               "%s needs a non-negative whole number, "
                               "got '%s'",
                               opt, arg);
        if (v > (UINT64_MAX - d) / 10)
            return usage_error(cmd, "%s: '%s' is too large", opt, arg);
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return usage_error(
            cmd, "%s must be between %" PRIu64 " and %" PRIu64 ", got '%s'",
            opt, min, max, arg);
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Result output                                                      */
/* ------------------------------------------------------------------ */

void out_to(FILE *f, const char *name)
{
    g_out = f;
    g_out_name = name;
}

int out_broken(void)
{
    return g_out_err != 0;
}

int out_write(const void *p, size_t n)
{
    if (g_out_err)
        return -1;
    if (n && fwrite(p, 1, n, g_out) != n) {
        g_out_err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int out_printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    if (g_out_err)
        return -1;
    va_start(ap, fmt);
    n = vfprintf(g_out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        g_out_err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int out_flush(void)
{
    if (g_out_err)
        return -1;
    if (fflush(g_out) != 0) {
        g_out_err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int out_finish(int status)
{
    out_flush();
    if (g_out != stdout && fclose(g_out) != 0 && !g_out_err)
        g_out_err = errno ? errno : EIO;
    g_out = stdout;
    if (!g_out_err)
        return status;
    if (g_out_err == EPIPE)
        return EXIT_OKAY; /* the reader went away, as with `| head` */
    return fail("writing %s: %s", g_out_name, strerror(g_out_err));
}

void out_json_str(evs_span s)
{
    char small[256];
    size_t n;

    if (!s.ptr) {
        out_write("null", 4);
        return;
    }
    n = evs_json_quote(s, small, sizeof(small));
    if (n == (size_t)-1) {
        /* Not UTF-8; the library never hands such text out, but stay
         * valid JSON whatever happens. */
        out_write("null", 4);
    } else if (n <= sizeof(small)) {
        out_write(small, n);
    } else {
        char *big = malloc(n);
        if (!big) {
            out_write("null", 4);
            return;
        }
        evs_json_quote(s, big, n);
        out_write(big, n);
        free(big);
    }
}

void out_json_time(int64_t us)
{
    char buf[EVS_TIME_LEN + 1];

    if (us == 0 || evs_time_format(us, buf) != 0)
        out_write("null", 4);
    else
        out_printf("\"%s\"", buf);
}

void out_member_str(const char *key, evs_span v, int first)
{
    out_printf("%s\"%s\":", first ? "{" : ",", key);
    out_json_str(v.ptr ? v : evs_span_cstr(""));
}

void out_member_time(const char *key, int64_t us)
{
    out_printf(",\"%s\":", key);
    out_json_time(us);
}

void out_member_json(const char *key, evs_span v)
{
    out_printf(",\"%s\":", key);
    if (v.len)
        out_write(v.ptr, v.len);
    else
        out_write("null", 4);
}

void out_member_u64(const char *key, uint64_t v)
{
    out_printf(",\"%s\":%" PRIu64, key, v);
}
