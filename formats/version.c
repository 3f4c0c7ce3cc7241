/*
 * version.c: the library's runtime version (evs_version,
 * evs_version_number), which is the one its headers were built with.
 */
#include "evstore/common.h"

/* evs_version_number() packs MINOR and PATCH in two decimal digits. */
_Static_assert(EVS_VERSION_MINOR < 100 && EVS_VERSION_PATCH < 100,
               "EVS_VERSION_MINOR and EVS_VERSION_PATCH must be below 100");

const char *evs_version(void)
{
    return EVS_VERSION_STRING;
}

int evs_version_number(void)
{
    return EVS_VERSION_MAJOR * 10000 + EVS_VERSION_MINOR * 100 +
           EVS_VERSION_PATCH;
}
