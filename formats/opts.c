/*
 * opts.c: reading a caller's options struct that may come from older or
 * newer headers than the library's (common.h, "Options structs").
 */
#include "formats_int.h"

#include <errno.h>
#include <string.h>

int evs__opts_read(void *dst, size_t dst_size, const void *src, size_t min)
{
    const unsigned char *b = src;
    size_t size;

    memcpy(&size, src, sizeof(size));
    if (size < min)
        return -EINVAL;
    /* Fields this library does not know may only be left unset. */
    for (size_t i = dst_size; i < size; i++)
        if (b[i] != 0)
            return -EINVAL;
    memcpy(dst, src, size < dst_size ? size : dst_size);
    memcpy(dst, &dst_size, sizeof(dst_size));
    return 0;
}
