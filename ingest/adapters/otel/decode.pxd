# C types for decode.py, which Cython compiles unchanged (config/compiled.py). Only what the
# protobuf path runs per attribute and per span; every type here holds whatever the code can put
# there (`dict`/`list`: built in the function itself; `str`: what upb returns for a string field).
cimport cython

# `cpdef`: calls from inside this module are C calls (no tests replace these functions).
@cython.locals(which=str, items=list)
cpdef _pb_value(value)

@cython.locals(out=dict, text=str)
cpdef dict _pb_attributes(key_values)

@cython.locals(trace_id=bytes, span_id=bytes, parent_id=bytes)
cpdef _pb_span(span, dict resource, scope)
