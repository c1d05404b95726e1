"""The model price catalog: shipped list prices and per-project overrides, and the cost of a call."""
