"""Tenant billing (plans, metering, quotas) lands here. The model price catalog that lived here is in
pricing/; this app keeps only the migrations that created its table, `billing_modelprice`."""
