/* placeholder: being written */
typedef int evs_placeholder_uuid_time;
