/* placeholder: being written */
typedef int evs_placeholder_file_cursor;
