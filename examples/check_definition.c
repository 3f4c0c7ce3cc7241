/*
 * check_definition.c: checks workflow definitions without running them,
 * as a host's CI might: each file is parsed and checked by the rules of
 * formats/WORKFLOWS.md (evs_wf_parse), and a refusal names the step and
 * the reason. The README's definition (examples/triage.json) is checked
 * this way in the examples suite.
 *
 * It uses only <evstore.h>: no libuv, strict C11.
 *
 * Usage: check_definition FILE...
 * Exits 0 when every file is accepted, 1 when one is refused or cannot
 * be read.
 */
#include <evstore.h>

#include <stdio.h>
#include <stdlib.h>

/* Reads a whole file into a malloc'd buffer; returns 0 or -1. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *nb;
    size_t cap = 0, n = 0, got;
    int rc = -1;

    if (!f)
        return -1;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            if (!(nb = realloc(buf, cap)))
                goto out;
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f))
        goto out;
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    int status = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: check_definition FILE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        evs_wf_def *def = NULL;
        evs_error_info why;
        char *json;
        size_t len;
        int rc;

        if (read_file(argv[i], &json, &len) != 0) {
            fprintf(stderr, "%s: cannot be read\n", argv[i]);
            status = 1;
            continue;
        }
        /* No has_action: any action name is accepted, as the host that
         * runs it registers its own. */
        rc = evs_wf_parse(json, len, NULL, NULL, NULL, &def, &why);
        if (rc == 0)
            printf("%s: accepted\n", argv[i]);
        else if (rc == EVS_EPARSE)
            fprintf(stderr, "%s: refused: %s%s%s\n", argv[i], why.step,
                    why.step[0] ? ": " : "", why.msg);
        else
            fprintf(stderr, "%s: %s\n", argv[i], evs_strerror(rc));
        if (rc != 0)
            status = 1;
        evs_wf_free(def);
        free(json);
    }
    return status;
}
