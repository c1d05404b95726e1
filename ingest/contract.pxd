# C types for contract.py, which Cython compiles unchanged (config/compiled.py): the per-record part
# of `check_records`. The lists and dicts typed are built in the function itself; records stay
# untyped. `_encoded` stays a module attribute (a test replaces it).
cimport cython

@cython.locals(documents=dict)
cpdef dict _documents(record)

@cython.locals(problems=list, documents=list)
cpdef list check_records(records)
