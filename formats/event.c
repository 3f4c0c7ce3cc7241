/* placeholder: being written */
typedef int evs_placeholder_event;
