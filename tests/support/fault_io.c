/* placeholder */
typedef int evs_ph_fault;
