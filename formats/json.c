/* placeholder: being written */
typedef int evs_placeholder_json;
