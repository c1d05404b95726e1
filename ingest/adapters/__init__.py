"""Wire formats -> records: each adapter translates its wire format into `ingest.contract` records
and maps per-record failures back into its wire answer. No adapter writes."""
