/* placeholder: being written */
typedef int evs_placeholder_io_posix;
