/*
 * errors.c: the error table (evs_strerror, evs_err_name) and the helpers
 * that fill in evs_error_info, shared by every layer.
 */
#include "formats_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *evs_strerror(int code)
{
    switch (code) {
#define EVS_X_(name, value, msg)                                               \
    case EVS_##name: return msg;
        EVS_ERRNO_MAP(EVS_X_)
#undef EVS_X_
    case 0: return "success";
    default: break;
    }
    if (code < 0 && code > EVS_ERRNO_FLOOR)
        return strerror(-code);
    return "unknown error";
}

const char *evs_err_name(int code)
{
    switch (code) {
#define EVS_X_(name, value, msg)                                               \
    case EVS_##name: return "EVS_" #name;
        EVS_ERRNO_MAP(EVS_X_)
#undef EVS_X_
    case 0: return "OK";
    case -EPERM: return "EPERM";
    case -ENOENT: return "ENOENT";
    case -EIO: return "EIO";
    case -EBADF: return "EBADF";
    case -EAGAIN: return "EAGAIN";
    case -ENOMEM: return "ENOMEM";
    case -EACCES: return "EACCES";
    case -EEXIST: return "EEXIST";
    case -ENOTDIR: return "ENOTDIR";
    case -EISDIR: return "EISDIR";
    case -EINVAL: return "EINVAL";
    case -EMFILE: return "EMFILE";
    case -ENOSPC: return "ENOSPC";
    case -EROFS: return "EROFS";
    case -ENAMETOOLONG: return "ENAMETOOLONG";
    case -ELOOP: return "ELOOP";
    case -ENOTEMPTY: return "ENOTEMPTY";
    case -EDQUOT: return "EDQUOT";
    case -EINTR: return "EINTR";
    case -ENOBUFS: return "ENOBUFS";
    case -EBUSY: return "EBUSY";
    case -ENXIO: return "ENXIO";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -ECANCELED: return "ECANCELED";
    case -E2BIG: return "E2BIG";
    case -EALREADY: return "EALREADY";
    case -EFBIG: return "EFBIG";
    case -ESTALE: return "ESTALE";
    default: return "EVS_EUNKNOWN";
    }
}

evs_span evs_span_cstr(const char *s)
{
    evs_span sp = {s, s ? strlen(s) : 0};
    return sp;
}

void evs_error_info_clear(evs_error_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    info->offset = UINT64_MAX;
    info->kind = "";
}

void evs__error_vset(evs_error_info *info, int code, const char *kind,
                     const char *fmt, va_list ap)
{
    if (!info)
        return;
    info->code = code;
    info->kind = kind ? kind : "";
    vsnprintf(info->msg, sizeof(info->msg), fmt, ap);
}

void evs__error_set(evs_error_info *info, int code, const char *kind,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evs__error_vset(info, code, kind, fmt, ap);
    va_end(ap);
}

void evs__error_set_step(evs_error_info *info, evs_span step)
{
    if (!info)
        return;
    if (step.len >= sizeof(info->step))
        step.len = sizeof(info->step) - 1;
    if (step.len)
        memcpy(info->step, step.ptr, step.len);
    info->step[step.len] = '\0';
}

void evs__error_set_id(evs_error_info *info, const char *id, size_t len)
{
    if (!info)
        return;
    if (len > EVS_ID_MAX)
        len = EVS_ID_MAX;
    memcpy(info->execution_id, id, len);
    info->execution_id[len] = '\0';
}
