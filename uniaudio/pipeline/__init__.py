"""Ray data engine: recipes -> manifests -> plan -> streaming stages -> WebDataset shards."""
