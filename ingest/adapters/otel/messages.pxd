# C types for messages.py, which Cython compiles unchanged (config/compiled.py). `attrs` and `fields`
# are always exact dicts: a span's working copy of its attributes (mapping.map_span) or a message's
# fields as `pop_indexed` builds them.
cimport cython

@cython.locals(attrs=dict, fields=dict, found=list)
cpdef list pop_indexed(attrs, prefix, keys=*)

@cython.locals(fields=dict, plain=dict, calls=list, parts=list)
cpdef dict oi_message(fields)
