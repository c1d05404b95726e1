# C types for writer.py, which Cython compiles unchanged (config/compiled.py): the in-memory part of a
# write, run for every record (normalise, merge, new rows). Every `dict` below is one the writer built
# itself (`dict(record)`, `_key_actions`, `_insert_base`), so always an exact dict; a record as sent
# stays untyped. `cpdef`: calls inside the module are C calls (no test replaces these functions).
cimport cython

@cython.locals(out=dict, actions=dict)
cpdef dict _normalise(record, table, actions)

@cython.locals(out=dict)
cpdef _store_normalised(out, key, value, table)

cpdef _normalised_value(key, value, table)

@cython.locals(acc=dict, rec=dict)
cpdef _merge_pair(acc, rec, table)

@cython.locals(merged=dict, actions=dict, rec=dict)
cpdef dict _collapse(records, table)

@cython.locals(base=dict, rows=list, row=dict)
cpdef list _insert_rows(recs, table, now)
