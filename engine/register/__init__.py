"""The register of issued documents and their numbers (文号): one for the whole firm."""
