"""The reproduction study's wing: sections of docs/reproduction.md built from the kept records
(`experiments.study_report` assembles the page; these modules compute and write their parts)."""
