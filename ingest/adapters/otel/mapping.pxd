# C types for mapping.py, which Cython compiles unchanged (config/compiled.py).
#
# `cpdef`: the span's helpers are called from `map_span` as C functions. Not for `map_span` and
# `_families_of` (tests replace them through the module, which must reach the callers) nor for any
# function with keyword-only arguments (a `cpdef` cannot have them).
#
# `attrs=dict`: the span's working copy of its attributes, always `dict(span.attributes)` (map_span),
# so an exact dict: its gets, pops and `in` tests become direct dict calls. `families` stays untyped
# (tests hand in subclasses whose `only` is a dict subclass with its own `__missing__`). Functions
# holding a generator expression or a lambda cannot be `cpdef` (Cython: closures inside cpdef
# functions are not supported) and stay as they are.
cimport cython

cpdef bint _present(value)

@cython.locals(attrs=dict)
cpdef _pop_first(attrs, keys)

cpdef _learn_family(str key)

cpdef _iso(moment)

@cython.locals(attrs=dict)
cpdef _classify_events(span, attrs)

@cython.locals(entry=dict)
cpdef dict _event_dict(event)

@cython.locals(attrs=dict)
cpdef _mime_value(attrs, key, mime_key)

@cython.locals(attrs=dict)
cpdef _input_messages(attrs, families, events)

@cython.locals(attrs=dict)
cpdef _output_messages(attrs, families, events)

@cython.locals(attrs=dict)
cpdef tuple _input(attrs, families, events, obs_type)

@cython.locals(attrs=dict)
cpdef tuple _output(attrs, families, events, obs_type)

@cython.locals(attrs=dict, params=dict)
cpdef dict _model_parameters(attrs, families)

@cython.locals(attrs=dict, fields=dict, template=dict)
cpdef dict _prompt(attrs, metadata, families)

@cython.locals(attrs=dict)
cpdef _tool_definitions(attrs, families)

@cython.locals(attrs=dict, reasons=list)
cpdef list _finish_reasons(attrs, families, output, messages)

@cython.locals(attrs=dict)
cpdef _completion_start(attrs, families, start, first_token)

@cython.locals(attrs=dict)
cpdef _environment(attrs, resource)

@cython.locals(attrs=dict, fields=dict)
cpdef dict _model_fields(attrs, families)

@cython.locals(attrs=dict, fields=dict)
cpdef dict _status_fields(span, attrs, families, exception, output, has_output)
