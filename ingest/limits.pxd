# C types for limits.py, which Cython compiles unchanged (config/compiled.py): the count of keys and
# the depth as C integers (both bounded far below Py_ssize_t by the limits they are checked against).
# The limits stay module attributes (tests change them).
cimport cython

@cython.locals(keys=Py_ssize_t, depth=Py_ssize_t, stack=list)
cpdef metadata_problem(value)
