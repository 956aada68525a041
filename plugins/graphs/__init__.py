"""Knowledge-graph sources: the embedded graphs (hpo, icd10cm, drug-names) and the bring-your-own edge table."""
