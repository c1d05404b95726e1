"""Models arrive with their issues; every model here must declare PLANE (see tenancy.planes)."""
