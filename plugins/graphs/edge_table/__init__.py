"""The `edge-table` data source: a PrimeKG-style `kg.csv` or TSV tables (DrugCentral, Disease Ontology)."""
